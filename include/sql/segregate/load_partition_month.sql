-- One new month table under the private loading table (see load_partition_create.sql).
-- {part}: <table>_YYYYMM, the name meter.ensure_partitions would give it; {lo}, {hi}: the
-- month's bounds in UTC (timestamptz literals made by psycopg; DDL takes no parameters).
CREATE TABLE {part} PARTITION OF {loading} FOR VALUES FROM ({lo}) TO ({hi});
