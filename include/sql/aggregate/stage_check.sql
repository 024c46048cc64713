-- agg_check: per source and half hour of the asked days, the number of readings and the sum of
-- their row versions (xmin): a scan with no grouping by meter, much cheaper than
-- stage_readings.sql. Compared with mart.refresh_mark (unchanged_days.sql) to skip days whose
-- readings did not change since their last refresh.
-- {readings_a} {readings_b} {readings_c}: fixed identifiers from meterflow.aggregation.TABLES.
-- from_a, to_a, from_b, to_b, from_c, to_c: parameters (NULL: the source has no asked day).
CREATE TEMP TABLE agg_check ON COMMIT DROP AS
SELECT 'A'::char(1) AS source, interval_start, count(*) AS n, sum(xmin::text::bigint) AS v
  FROM {readings_a}
 WHERE interval_start >= %(from_a)s AND interval_start < %(to_a)s
 GROUP BY interval_start
UNION ALL
SELECT 'B'::char(1), interval_start, count(*), sum(xmin::text::bigint)
  FROM {readings_b}
 WHERE interval_start >= %(from_b)s AND interval_start < %(to_b)s
 GROUP BY interval_start
UNION ALL
SELECT 'C'::char(1), interval_start, count(*), sum(xmin::text::bigint)
  FROM {readings_c}
 WHERE interval_start >= %(from_c)s AND interval_start < %(to_c)s
 GROUP BY interval_start
