-- loadgen results store, version 1 (SQLite: the same tables and columns; JSON and timestamps (ISO 8601, UTC) as TEXT).
-- Applied by `loadgen db migrate` and on first use; recorded in schema_migrations.
-- Histograms are HdrHistogram's compressed V2 encoding in base64 (readable by every
-- HdrHistogram port); *_min_us / *_max_us keep the exact extremes the encoding rounds.

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    app_version     TEXT,
    git_commit      TEXT,
    environment     TEXT,
    test_type       TEXT NOT NULL,
    scenario        TEXT,
    host            TEXT,            -- the target
    generator_host  TEXT,            -- the machine that ran loadgen
    model           TEXT NOT NULL,   -- open | closed
    loadgen_version TEXT NOT NULL,
    config          TEXT NOT NULL,  -- the full run configuration (no secrets)
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    status          TEXT NOT NULL,   -- running | completed | interrupted | aborted
    exit_code       INTEGER,
    duration_s      REAL,
    requests        INTEGER,
    errors          INTEGER,
    summary         TEXT            -- the summary document (README, "Summary JSON")
);
CREATE INDEX runs_baseline_idx ON runs (app_version, scenario, test_type, started_at DESC);
CREATE INDEX runs_started_idx ON runs (started_at DESC);

-- One row per endpoint ("GET /api/x") and one for the whole run (endpoint 'total').
CREATE TABLE endpoint_results (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    endpoint        TEXT NOT NULL,
    method          TEXT NOT NULL,
    name            TEXT NOT NULL,
    requests        INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    error_rate      REAL NOT NULL,
    rps             REAL NOT NULL,
    bytes_sent      INTEGER NOT NULL,
    bytes_received  INTEGER NOT NULL,
    p50_ms          REAL,
    p90_ms          REAL,
    p95_ms          REAL,
    p99_ms          REAL,
    p999_ms         REAL,
    max_ms          REAL,
    mean_ms         REAL,
    min_ms          REAL,
    status_codes    TEXT NOT NULL,
    errors_by_kind  TEXT NOT NULL,
    latency_hist    TEXT NOT NULL,
    latency_min_us  INTEGER,
    latency_max_us  INTEGER,
    service_hist    TEXT,
    ttfb_hist       TEXT,
    PRIMARY KEY (run_id, endpoint)
);

-- Per interval (one second) and endpoint, flushed as the run goes. shard is 0 for a
-- run of one process; shards and workers of one run write their own.
CREATE TABLE intervals (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard           INTEGER NOT NULL DEFAULT 0,
    idx             INTEGER NOT NULL,
    endpoint        TEXT NOT NULL,
    method          TEXT NOT NULL,
    name            TEXT NOT NULL,
    ts              TEXT NOT NULL,   -- the interval's end
    start_s         REAL NOT NULL,
    end_s           REAL NOT NULL,
    requests        INTEGER NOT NULL,
    errors          INTEGER NOT NULL,
    bytes_sent      INTEGER NOT NULL,
    bytes_received  INTEGER NOT NULL,
    p50_ms          REAL,
    p95_ms          REAL,
    p99_ms          REAL,
    max_ms          REAL,
    status_codes    TEXT NOT NULL,
    errors_by_kind  TEXT NOT NULL,
    latency_hist    TEXT NOT NULL,
    latency_min_us  INTEGER,
    latency_max_us  INTEGER,
    PRIMARY KEY (run_id, shard, idx, endpoint)
);

-- The generator itself, per interval.
CREATE TABLE interval_stats (
    run_id              TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard               INTEGER NOT NULL DEFAULT 0,
    idx                 INTEGER NOT NULL,
    ts                  TEXT NOT NULL,
    start_s             REAL NOT NULL,
    end_s               REAL NOT NULL,
    iterations          INTEGER NOT NULL,
    dropped_iterations  INTEGER NOT NULL,
    users               INTEGER NOT NULL,
    inflight            INTEGER NOT NULL,
    target_rate         REAL,
    cpu_percent         REAL NOT NULL,
    saturated           INTEGER NOT NULL,
    lag_p99_ms          REAL,
    lag_hist            TEXT NOT NULL,
    PRIMARY KEY (run_id, shard, idx)
);

-- Filled by the collectors (loadgen.collectors).
CREATE TABLE resource_samples (
    run_id            TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard             INTEGER NOT NULL DEFAULT 0,
    service           TEXT NOT NULL,
    ts                TEXT NOT NULL,
    pids              TEXT NOT NULL,   -- comma-separated
    cpu_percent       REAL NOT NULL,
    rss_bytes         INTEGER NOT NULL,
    threads           INTEGER NOT NULL,
    disk_read_bytes   INTEGER,
    disk_write_bytes  INTEGER,
    net_sent_bytes    INTEGER,
    net_recv_bytes    INTEGER,
    net_scope         TEXT NOT NULL,   -- process | system
    PRIMARY KEY (run_id, shard, service, ts)
);

CREATE TABLE queue_samples (
    run_id             TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard              INTEGER NOT NULL DEFAULT 0,
    queue              TEXT NOT NULL,
    ts                 TEXT NOT NULL,
    source             TEXT NOT NULL,   -- prometheus | redis | rabbitmq
    length             REAL,
    processing_time_s  REAL,
    published_per_s    REAL,
    consumed_per_s     REAL,
    error_rate         REAL,
    backlog_age_s      REAL,
    PRIMARY KEY (run_id, shard, queue, ts)
);

CREATE TABLE comparisons (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at        TEXT NOT NULL,
    candidate_run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    baseline_version  TEXT NOT NULL,
    baseline_run_ids  TEXT NOT NULL,
    scenario          TEXT,
    test_type         TEXT NOT NULL,
    thresholds        TEXT NOT NULL,
    verdict           TEXT NOT NULL,    -- pass | regression
    regressions       INTEGER NOT NULL,
    improvements      INTEGER NOT NULL,
    noise_estimate    INTEGER NOT NULL
);
CREATE INDEX comparisons_candidate_idx ON comparisons (candidate_run_id);

CREATE TABLE comparison_rows (
    comparison_id  INTEGER NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    pos            INTEGER NOT NULL,
    metric         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    unit           TEXT,
    baseline       REAL,
    baseline_min   REAL,
    baseline_max   REAL,
    candidate      REAL,
    change         REAL,
    change_kind    TEXT,
    threshold      REAL,
    verdict        TEXT NOT NULL,
    note           TEXT,
    PRIMARY KEY (comparison_id, pos)
);
