-- loadgen results store, version 1 (PostgreSQL).
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
    config          JSONB NOT NULL,  -- the full run configuration (no secrets)
    started_at      TIMESTAMPTZ NOT NULL,
    ended_at        TIMESTAMPTZ,
    status          TEXT NOT NULL,   -- running | completed | interrupted | aborted
    exit_code       INTEGER,
    duration_s      DOUBLE PRECISION,
    requests        BIGINT,
    errors          BIGINT,
    summary         JSONB            -- the summary document (README, "Summary JSON")
);
CREATE INDEX runs_baseline_idx ON runs (app_version, scenario, test_type, started_at DESC);
CREATE INDEX runs_started_idx ON runs (started_at DESC);

-- One row per endpoint ("GET /api/x") and one for the whole run (endpoint 'total').
CREATE TABLE endpoint_results (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    endpoint        TEXT NOT NULL,
    method          TEXT NOT NULL,
    name            TEXT NOT NULL,
    requests        BIGINT NOT NULL,
    errors          BIGINT NOT NULL,
    error_rate      DOUBLE PRECISION NOT NULL,
    rps             DOUBLE PRECISION NOT NULL,
    bytes_sent      BIGINT NOT NULL,
    bytes_received  BIGINT NOT NULL,
    p50_ms          DOUBLE PRECISION,
    p90_ms          DOUBLE PRECISION,
    p95_ms          DOUBLE PRECISION,
    p99_ms          DOUBLE PRECISION,
    p999_ms         DOUBLE PRECISION,
    max_ms          DOUBLE PRECISION,
    mean_ms         DOUBLE PRECISION,
    min_ms          DOUBLE PRECISION,
    status_codes    JSONB NOT NULL,
    errors_by_kind  JSONB NOT NULL,
    latency_hist    TEXT NOT NULL,
    latency_min_us  BIGINT,
    latency_max_us  BIGINT,
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
    ts              TIMESTAMPTZ NOT NULL,   -- the interval's end
    start_s         DOUBLE PRECISION NOT NULL,
    end_s           DOUBLE PRECISION NOT NULL,
    requests        BIGINT NOT NULL,
    errors          BIGINT NOT NULL,
    bytes_sent      BIGINT NOT NULL,
    bytes_received  BIGINT NOT NULL,
    p50_ms          DOUBLE PRECISION,
    p95_ms          DOUBLE PRECISION,
    p99_ms          DOUBLE PRECISION,
    max_ms          DOUBLE PRECISION,
    status_codes    JSONB NOT NULL,
    errors_by_kind  JSONB NOT NULL,
    latency_hist    TEXT NOT NULL,
    latency_min_us  BIGINT,
    latency_max_us  BIGINT,
    PRIMARY KEY (run_id, shard, idx, endpoint)
);

-- The generator itself, per interval.
CREATE TABLE interval_stats (
    run_id              TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard               INTEGER NOT NULL DEFAULT 0,
    idx                 INTEGER NOT NULL,
    ts                  TIMESTAMPTZ NOT NULL,
    start_s             DOUBLE PRECISION NOT NULL,
    end_s               DOUBLE PRECISION NOT NULL,
    iterations          BIGINT NOT NULL,
    dropped_iterations  BIGINT NOT NULL,
    users               INTEGER NOT NULL,
    inflight            INTEGER NOT NULL,
    target_rate         DOUBLE PRECISION,
    cpu_percent         DOUBLE PRECISION NOT NULL,
    saturated           BOOLEAN NOT NULL,
    lag_p99_ms          DOUBLE PRECISION,
    lag_hist            TEXT NOT NULL,
    PRIMARY KEY (run_id, shard, idx)
);

-- Filled by the collectors (loadgen.collectors).
CREATE TABLE resource_samples (
    run_id            TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard             INTEGER NOT NULL DEFAULT 0,
    service           TEXT NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    pids              TEXT NOT NULL,   -- comma-separated
    cpu_percent       DOUBLE PRECISION NOT NULL,
    rss_bytes         BIGINT NOT NULL,
    threads           INTEGER NOT NULL,
    disk_read_bytes   BIGINT,
    disk_write_bytes  BIGINT,
    net_sent_bytes    BIGINT,
    net_recv_bytes    BIGINT,
    net_scope         TEXT NOT NULL,   -- process | system
    PRIMARY KEY (run_id, shard, service, ts)
);

CREATE TABLE queue_samples (
    run_id             TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard              INTEGER NOT NULL DEFAULT 0,
    queue              TEXT NOT NULL,
    ts                 TIMESTAMPTZ NOT NULL,
    source             TEXT NOT NULL,   -- prometheus | redis | rabbitmq
    length             DOUBLE PRECISION,
    processing_time_s  DOUBLE PRECISION,
    published_per_s    DOUBLE PRECISION,
    consumed_per_s     DOUBLE PRECISION,
    error_rate         DOUBLE PRECISION,
    backlog_age_s      DOUBLE PRECISION,
    PRIMARY KEY (run_id, shard, queue, ts)
);

CREATE TABLE comparisons (
    id                BIGSERIAL PRIMARY KEY,
    created_at        TIMESTAMPTZ NOT NULL,
    candidate_run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    baseline_version  TEXT NOT NULL,
    baseline_run_ids  JSONB NOT NULL,
    scenario          TEXT,
    test_type         TEXT NOT NULL,
    thresholds        JSONB NOT NULL,
    verdict           TEXT NOT NULL,    -- pass | regression
    regressions       INTEGER NOT NULL,
    improvements      INTEGER NOT NULL,
    noise_estimate    BOOLEAN NOT NULL
);
CREATE INDEX comparisons_candidate_idx ON comparisons (candidate_run_id);

CREATE TABLE comparison_rows (
    comparison_id  BIGINT NOT NULL REFERENCES comparisons (id) ON DELETE CASCADE,
    pos            INTEGER NOT NULL,
    metric         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    unit           TEXT,
    baseline       DOUBLE PRECISION,
    baseline_min   DOUBLE PRECISION,
    baseline_max   DOUBLE PRECISION,
    candidate      DOUBLE PRECISION,
    change         DOUBLE PRECISION,
    change_kind    TEXT,
    threshold      DOUBLE PRECISION,
    verdict        TEXT NOT NULL,
    note           TEXT,
    PRIMARY KEY (comparison_id, pos)
);
