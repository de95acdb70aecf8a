"""Work done in other processes: the channel every loadgen child process speaks, and the
messages of ``--workers``."""
