from loadgen import User, task


class Uploader(User):
    @task
    async def calls(self):
        await self.client.post("/form", data={"a": "1"})
        await self.client.post("/both", data=None, json={"k": "v"})
        await self.client.put("/raw", data=b"bytes", headers={"Content-Type": "text/plain"})
        await self.client.post(
            "/upload",
            files={"file": ("report.csv", b"a,b\n", "text/csv")},
            auth=("ann", "secret"),
            cookies={"session": "s1"},
            timeout=(3.05, 10),
            verify=False,
            cert=("client.pem", "client.key"),
            allow_redirects=False,
        )
        # loadgen convert: stream= dropped: loadgen reads every body (up to its size limit)
        # loadgen convert: proxies= kept: loadgen's client takes no proxies= (a TypeError until it is removed); use --proxy (or HTTP_PROXY/HTTPS_PROXY)
        await self.client.get("/stream", proxies={"https": "http://proxy:3128"})
        await self.client.request("GET", "/by-request", name="by request")
        # loadgen convert: context= dropped: loadgen's request listeners get no per-request context
        await self.client.delete("/items/9", name="/items/[id]")
        kwargs = {"timeout": 5}
        await self.client.get("/kw", **kwargs)
