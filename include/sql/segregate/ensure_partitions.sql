-- Monthly partitions of one source table covering a batch's readings, created before the rows
-- arrive (idempotent; meter.ensure_partitions in V002). Runs in its own short transaction so
-- the lock that creating a partition takes on the parent is not held while a batch promotes.
-- table: a regclass from the fixed mapping in meterflow.segregate; last is an interval's
-- start, so the range ends just after it.
SELECT meter.ensure_partitions(%(table)s::regclass, %(first)s,
                               %(last)s::timestamptz + interval '1 microsecond');
