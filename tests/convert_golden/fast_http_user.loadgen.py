from loadgen import User, constant, task


class ApiUser(User):
    wait_time = constant(0.5)
    # loadgen convert: FastHttpUser's network_timeout has no per-class setting in loadgen: use --timeout (or timeout= per call)
    network_timeout = 5.0
    # loadgen convert: FastHttpUser's insecure has no per-class setting in loadgen: use --insecure (or verify=False per call)
    insecure = True

    @task
    async def search(self):
        # FastHttpUser names a request by the URL as written
        await self.client.get("/search?q=shoes", name="/search?q=shoes")
        await self.client.get("/search", params={"q": "boots"})
        await self.client.get("https://cdn.example/logo.png", name="https://cdn.example/logo.png")
        await self.client.post("/items", data="raw body")
