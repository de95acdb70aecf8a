"""A run spread over processes and hosts: the channel every loadgen child process speaks
(:mod:`.channel`, :mod:`.messages`), ``--workers`` (:mod:`.coordinator` in the parent,
:mod:`.worker` in each child), the interval and part codec between them (:mod:`.wire`),
and ``--shard`` runs merged through the store (:mod:`.shards`)."""
