-- The months (UTC) a batch's readings of one source span, and whether the source table has
-- its partition for each yet. Runs inside the promoting transaction, after the segregation
-- lock, so no other promoter creates one meanwhile. A month without a partition is loaded
-- through load_partition_*.sql (rows first, indexes after); a month with one takes the
-- classify → supersede → insert path. The partition name is meter.ensure_partitions's (V002):
-- <table>_YYYYMM in the table's schema.
-- rel: the table's name from the fixed mapping in meterflow.segregate; first, last: the
-- batch's first and last interval_start of that source.
SELECT m AS month_start,
       to_regclass('meter.' || quote_ident(%(rel)s || '_' || to_char(m, 'YYYYMM')))
           IS NOT NULL AS has_partition
  FROM generate_series(date_trunc('month', %(first)s::timestamptz AT TIME ZONE 'UTC'),
                       %(last)s::timestamptz AT TIME ZONE 'UTC', interval '1 month') AS m
 ORDER BY m;
