from locust import HttpUser, task


class Uploader(HttpUser):
    @task
    def calls(self):
        self.client.post("/form", {"a": "1"})
        self.client.post("/both", None, {"k": "v"})
        self.client.put("/raw", b"bytes", headers={"Content-Type": "text/plain"})
        self.client.post(
            "/upload",
            files={"file": ("report.csv", b"a,b\n", "text/csv")},
            auth=("ann", "secret"),
            cookies={"session": "s1"},
            timeout=(3.05, 10),
            verify=False,
            cert=("client.pem", "client.key"),
            allow_redirects=False,
        )
        self.client.get("/stream", stream=True, proxies={"https": "http://proxy:3128"})
        self.client.request("GET", "/by-request", "by request")
        self.client.delete("/items/9", name="/items/[id]", context={"tenant": "a"})
        kwargs = {"timeout": 5}
        self.client.get("/kw", **kwargs)
