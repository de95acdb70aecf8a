-- loadgen results store, version 2: runs split into shards across hosts.
-- Each shard registers here; all start together once every one has (the barrier),
-- and each leaves its end-of-run part; the last one to finish merges the parts
-- into the run's results.

CREATE TABLE run_shards (
    run_id         TEXT NOT NULL,
    shard          INTEGER NOT NULL,
    shards         INTEGER NOT NULL,
    host           TEXT,
    registered_at  TIMESTAMPTZ NOT NULL,
    status         TEXT NOT NULL,   -- waiting | done
    part           JSONB,           -- what the shard measured beyond its intervals
    PRIMARY KEY (run_id, shard)
);
