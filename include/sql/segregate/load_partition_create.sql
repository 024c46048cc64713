-- New monthly partitions of one source table, loaded before they have indexes (a B-tree built
-- once over sorted rows is ~3× cheaper than ~1 M index insertions in random key order).
-- A private, index-less partitioned table {loading} receives the month tables as partitions,
-- so one INSERT (load_partition_insert.sql) routes the batch's rows into all of them.
-- {loading}: <table>_loading; dropped in the same transaction (load_partition_finish.sql).
-- {table}: meter.readings_a | _b | _c from the fixed mapping in meterflow.segregate.
CREATE TABLE {loading} (LIKE {table}) PARTITION BY RANGE (interval_start);
