"""A leader lease with fencing tokens and fenced slot claims, on DynamoDB or Redis.

What is guaranteed: at most one participant holds the lease at a time as judged by the store;
every change of holder increases the fencing token; a slot claim succeeds at most once per
(lock, entry, slot) and only while the claimer's token is the lease's current token, so a
paused or partitioned former holder cannot get a run published. What is not: a holder's
``valid()`` is a local estimate from its own monotonic clock; only the store's conditional
writes are authoritative, which is why every action goes through ``claim``.
"""
