from loadgen import User, task


class CheckingUser(User):
    @task
    async def item(self):
        r = await self.client.get("/items/1", name="/items/[id]", expect=404)  # the item page
        if r.status_code == 404:
            pass
        elif "price" not in r.text:
            r.fail("no price on the page")

    @task
    async def accepted(self):
        response = await self.client.post("/jobs", json={"n": 1})
        if response.status_code in (200, 202):
            pass
        else:
            response.fail(f"got {response.status_code}")

    @task
    async def anything_goes(self):
        resp = await self.client.get("/flaky")
        # loadgen convert: resp.success() dropped: loadgen counts a status of 400 or above as an error unless the request expects it: add expect=<status> to the call if it does
        pass

    @task
    async def no_name(self):
        await self.client.get("/health")
