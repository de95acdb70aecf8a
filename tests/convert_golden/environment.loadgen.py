from loadgen import User, task


class Configured(User):
    async def on_start(self):
        print("testing", self.client.base_url)
        self.client.headers.update({"X-Tenant": "acme"})
        # loadgen convert: self.client.auth: loadgen's client has no 'auth': pass auth= with each call
        self.client.auth = ("ann", "secret")

    @task
    async def t(self):
        # loadgen convert: self.environment.parsed_options: loadgen's users have no environment (Locust's Environment); loadgen's environment has no parsed_options: its `options` mapping has loadgen's option keys, and custom command-line options do not exist (read environment variables)
        size = self.environment.parsed_options.num_users
        await self.client.get("/", headers={"X-Size": str(size)})
        print(self.client.cookies.as_dict())
