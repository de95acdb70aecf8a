"""The catalogue of ``/metrics``: every family's name, type, labels and help, and the defaults.

The exposition renders every family from here, and nothing else; the tests
check the dashboards' queries against it.
"""

from __future__ import annotations

__all__ = [
    "CONST_LABELS",
    "DURATION_BUCKETS_S",
    "LAG_BUCKETS_S",
    "METRICS",
    "QUANTILES",
    "QUEUE_FIELDS",
    "SERVICE_FIELDS",
]

#: Request latency buckets, seconds: 1 ms to 60 s.
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Scheduler lag buckets, seconds: 0.5 ms to 5 s.
LAG_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Quantiles of the sliding-window latency gauges.
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)
#: Labels every series carries, in this order.
CONST_LABELS = ("run_id", "app_version", "test_type")


#: Every metric family: name -> (type, labels besides the constant ones, help).
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    # The run.
    "loadgen_run_info": ("gauge", ("scenario", "host", "model", "loadgen_version"),
                         "The run: scenario file, target origin, model and loadgen version (always 1)."),
    "loadgen_run_start_timestamp_seconds": ("gauge", (), "When the run started, seconds since the epoch."),
    "loadgen_run_elapsed_seconds": ("gauge", (), "Seconds of the run covered by the exported intervals."),
    "loadgen_run_finished": ("gauge", (), "1 once the run has ended and all of it is exported."),
    "loadgen_intervals_total": ("counter", (), "Intervals (of a second) exported."),
    # Requests, by request name and method.
    "loadgen_requests_total": ("counter", ("name", "method", "status_class"),
                               "Requests done, by status class: 1xx-5xx, or error when no HTTP response came."),
    "loadgen_errors_total": ("counter", ("name", "method", "kind"),
                             "Failed requests and checks by kind: http_4xx, http_5xx, connect, timeout, reset, "
                             "protocol, cutoff (in flight when the run ended), too_large (a response past a size "
                             "limit), invalid_request (could not be sent as asked), tls (handshake failed), proxy (the proxy refused the tunnel), redirect_loop, too_many_redirects, check, other."),
    "loadgen_sent_bytes_total": ("counter", ("name", "method"), "Bytes sent in requests."),
    "loadgen_received_bytes_total": ("counter", ("name", "method"), "Bytes received in responses."),
    "loadgen_request_duration_seconds": ("histogram", ("name", "method"),
                                         "Request latency (open model: from the intended start), from HDR "
                                         "histograms; requests without a response time are not in it."),
    "loadgen_request_duration_quantile_seconds": ("gauge", ("name", "method", "quantile"),
                                                  "Latency quantiles of the last intervals (a sliding window), "
                                                  "exact from HDR histograms."),
    # The generator.
    "loadgen_iterations_total": ("counter", (), "Iterations started."),
    "loadgen_dropped_iterations_total": ("counter", (),
                                         "Open model: arrivals dropped because every user was busy (--max-inflight)."),
    "loadgen_active_users": ("gauge", (), "Live users."),
    "loadgen_inflight_iterations": ("gauge", (), "Users busy with an iteration."),
    "loadgen_target_arrival_rate": ("gauge", (), "Open model: intended iterations per second."),
    "loadgen_achieved_arrival_rate": ("gauge", (), "Open model: iterations started per second in the last interval."),
    "loadgen_scheduler_lag_seconds": ("histogram", (), "Open model: how late the scheduler dispatched arrivals."),
    "loadgen_scheduler_lag_p99_seconds": ("gauge", (), "Open model: p99 dispatch lag in the last interval."),
    "loadgen_generator_saturated": ("gauge", (), "1 when the generator itself limited the last interval."),
    "loadgen_saturated_intervals_total": ("counter", (), "Intervals the generator itself limited."),
    "loadgen_event_loop_stall_seconds": ("gauge", (),
                                         "Longest event-loop stall in the last interval: how late the stall "
                                         "monitor's tick fired (a blocking call, a burst, CPU)."),
    "loadgen_generator_stalled": ("gauge", (), "1 when an event-loop stall distorted the last interval."),
    "loadgen_stalled_intervals_total": ("counter", (), "Intervals an event-loop stall distorted."),
    "loadgen_failed_iterations_total": ("counter", ("task",),
                                        "Iterations that ended in an exception, by task (User.on_start included)."),
    "loadgen_generator_cpu_percent": ("gauge", (), "The generator's CPU in the last interval, % of one core."),
    "loadgen_generator_memory_bytes": ("gauge", (), "The generator's resident memory (RSS)."),
    # Services, from the collectors' resource samples.
    "loadgen_service_cpu_percent": ("gauge", ("service",), "A service's CPU, % of one core."),
    "loadgen_service_memory_bytes": ("gauge", ("service",), "A service's resident memory (RSS, its processes summed)."),
    "loadgen_service_threads": ("gauge", ("service",), "A service's threads."),
    "loadgen_service_disk_read_bytes_total": ("counter", ("service",), "Bytes a service read from disk."),
    "loadgen_service_disk_write_bytes_total": ("counter", ("service",), "Bytes a service wrote to disk."),
    "loadgen_service_network_sent_bytes_total": ("counter", ("service", "scope"),
                                                 "Bytes sent on the network; scope: process (the service's own), "
                                                 "namespace (its network namespace) or system (the whole host)."),
    "loadgen_service_network_received_bytes_total": ("counter", ("service", "scope"),
                                                     "Bytes received from the network; scope: process, namespace or system."),
    # Queues, from the collectors' queue samples.
    "loadgen_queue_length": ("gauge", ("queue", "source"), "Messages waiting in a queue."),
    "loadgen_queue_processing_seconds": ("gauge", ("queue", "source"),
                                         "Mean time to process one message over the last sample period."),
    "loadgen_queue_published_per_second": ("gauge", ("queue", "source"), "Messages published per second."),
    "loadgen_queue_consumed_per_second": ("gauge", ("queue", "source"), "Messages consumed per second."),
    "loadgen_queue_error_ratio": ("gauge", ("queue", "source"),
                                  "Failed over processed messages in the last sample period."),
    "loadgen_queue_backlog_age_seconds": ("gauge", ("queue", "source"), "Age of the oldest waiting message."),
}  # fmt: skip

#: The service families and the :class:`~loadgen.samples.ResourceSample` field each shows.
SERVICE_FIELDS = (
    ("loadgen_service_cpu_percent", "cpu_percent"),
    ("loadgen_service_memory_bytes", "rss_bytes"),
    ("loadgen_service_threads", "threads"),
    ("loadgen_service_disk_read_bytes_total", "disk_read_bytes"),
    ("loadgen_service_disk_write_bytes_total", "disk_write_bytes"),
    ("loadgen_service_network_sent_bytes_total", "net_sent_bytes"),
    ("loadgen_service_network_received_bytes_total", "net_recv_bytes"),
)
#: The queue families and the :class:`~loadgen.samples.QueueSample` field each shows.
QUEUE_FIELDS = (
    ("loadgen_queue_length", "length"),
    ("loadgen_queue_processing_seconds", "processing_time_s"),
    ("loadgen_queue_published_per_second", "published_per_s"),
    ("loadgen_queue_consumed_per_second", "consumed_per_s"),
    ("loadgen_queue_error_ratio", "error_rate"),
    ("loadgen_queue_backlog_age_seconds", "backlog_age_s"),
)
