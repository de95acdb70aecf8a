-- loadgen results store, version 3: the generator's own health and failed iterations.
-- interval_stats: how late the event loop's stall monitor fired each interval (p99 and max,
-- ms), whether the stall distorted the interval and its likely cause, and the iterations
-- that ended in an exception, by task ({"User.task": n}).
-- runs: why the run ended when it was not its schedule (signal, abort-on-fail, ...).

ALTER TABLE interval_stats ADD COLUMN stall_p99_ms REAL;
ALTER TABLE interval_stats ADD COLUMN stall_max_ms REAL;
ALTER TABLE interval_stats ADD COLUMN stalled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE interval_stats ADD COLUMN stall_cause TEXT;
ALTER TABLE interval_stats ADD COLUMN failed_iterations TEXT;
ALTER TABLE runs ADD COLUMN stop_reason TEXT;
