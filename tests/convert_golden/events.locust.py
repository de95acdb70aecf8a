import os

from locust import HttpUser, events, task
from locust.runners import MasterRunner, WorkerRunner

totals = {"bytes": 0}


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    parser.add_argument("--tenant", default="acme")


@events.init.add_listener
def on_init(environment, **kwargs):
    print("host", environment.host)


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    if not isinstance(environment.runner, MasterRunner):
        print("tenant", environment.parsed_options.tenant)
    if isinstance(environment.runner, WorkerRunner):
        print("a worker")


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, exception, **kwargs):
    totals["bytes"] += response_length


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):
    print(totals)


@events.quitting.add_listener
def on_quitting(environment, **kwargs):
    environment.process_exit_code = 1


class Api(HttpUser):
    host = os.environ.get("API_HOST", "http://api.example")

    @task
    def ping(self):
        self.client.get("/ping")
