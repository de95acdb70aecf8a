import os

from loadgen import User, events, task
# loadgen convert: still imports WorkerRunner from locust.runners: loadgen has no equivalent, so this file needs Locust installed until the marked uses are rewritten
from locust.runners import WorkerRunner

totals = {"bytes": 0}


# loadgen convert: @events.init_command_line_parser.add_listener removed: loadgen has no 'init_command_line_parser' event: custom command-line options do not exist in loadgen: read such settings from environment variables; add_arguments is kept but never called
def add_arguments(parser):
    parser.add_argument("--tenant", default="acme")


@events.init.add_listener
def on_init(environment, **kwargs):
    print("host", environment.host)


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    if True:
        # loadgen convert: environment.parsed_options: loadgen's environment has no parsed_options: its `options` mapping has loadgen's option keys, and custom command-line options do not exist (read environment variables)
        print("tenant", environment.parsed_options.tenant)
    # loadgen convert: environment.runner: Locust's runner internals have no loadgen equivalent (loadgen's environment.runner is None)
    # loadgen convert: WorkerRunner: Locust's runner internals have no loadgen equivalent (loadgen's environment.runner is None)
    if isinstance(environment.runner, WorkerRunner):
        print("a worker")


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, exception, **kwargs):
    totals["bytes"] += response_length


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):
    print(totals)


# loadgen convert: @events.quitting.add_listener removed: loadgen has no 'quitting' event: use events.test_stop; on_quitting is kept but never called
def on_quitting(environment, **kwargs):
    # loadgen convert: environment.process_exit_code: loadgen's environment has host, options and runner (None) only
    environment.process_exit_code = 1


class Api(User):
    host = os.environ.get("API_HOST", "http://api.example")

    @task
    async def ping(self):
        await self.client.get("/ping")
