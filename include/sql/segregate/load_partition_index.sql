-- A loaded month table leaves the loading table and is attached to the source table. ATTACH
-- builds every index of the parent (primary key, interval_start, BRIN on batch_id) on the
-- loaded rows in one pass each, with the names a partition created under the parent gets, and
-- scans the month once to check its bounds. A (meter, interval) staged twice fails the
-- primary key here. ATTACH locks the parent SHARE UPDATE EXCLUSIVE (readers and writers go
-- on) until the promoting transaction ends.
-- {part}: <table>_YYYYMM; {lo}, {hi}: the month's bounds in UTC (see load_partition_month.sql).
ALTER TABLE {loading} DETACH PARTITION {part};
ALTER TABLE {table} ATTACH PARTITION {part} FOR VALUES FROM ({lo}) TO ({hi});
