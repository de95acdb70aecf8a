from loadgen import User, task
# loadgen convert: still imports HttpSession from locust.clients: loadgen has no equivalent, so this file needs Locust installed until the marked uses are rewritten
from locust.clients import HttpSession


class TwoHosts(User):
    async def on_start(self):
        # loadgen convert: self.client.request_event: loadgen's client has no 'request_event': loadgen records the client's requests itself
        # loadgen convert: HttpSession: a second HTTP session is a custom client: loadgen gives each user one client, which takes absolute URLs to other hosts
        self.other = HttpSession(base_url="http://other.example", request_event=self.client.request_event, user=self)

    @task
    async def both(self):
        await self.client.get("/")
        self.other.get("/")


if __name__ == "__main__":
    from locust import run_single_user
    # loadgen convert: run_single_user: loadgen has no run_single_user: run `loadgen run FILE --users 1` instead
    run_single_user(TwoHosts)
