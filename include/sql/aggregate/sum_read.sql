-- sum_read: one parallel scan of each source table over its days (UTC bounds of the first and
-- last local day of the source in sum_days; NULL bounds: the source has no day to sum),
-- summing kWh per half hour (interval_start) and channel: the load profile (sum_profile.sql
-- keeps import and export apart and leaves non-energy channels out) and the proof that every
-- reading, of any channel, sits on the 30-minute grid (resum raises on an interval_start that
-- is not a half hour of sum_slot, sum_off_grid.sql, before anything is written). Grouping by
-- the channel, rather than a FILTER per kind, judges a channel's kind once per group, not once
-- per reading. The per-meter sums come from sum_meter_days.sql's own scan: one grouping per
-- query lets PostgreSQL run each in parallel (GROUPING SETS do not), which at 10M readings is
-- faster than one serial scan.
-- CREATE TABLE AS (not INSERT ... SELECT) so PostgreSQL may run the scan in parallel.
-- {readings_a} {readings_b} {readings_c}: fixed identifiers from meterflow.aggregation.TABLES.
-- from_a, to_a, from_b, to_b, from_c, to_c: parameters.
CREATE TEMP TABLE sum_read ON COMMIT DROP AS
SELECT 'A'::char(1) AS source, interval_start, channel,
       sum(kwh) AS kwh, count(*)::integer AS n
  FROM {readings_a}
 WHERE interval_start >= %(from_a)s AND interval_start < %(to_a)s
 GROUP BY interval_start, channel
UNION ALL
SELECT 'B'::char(1), interval_start, channel, sum(kwh), count(*)::integer
  FROM {readings_b}
 WHERE interval_start >= %(from_b)s AND interval_start < %(to_b)s
 GROUP BY interval_start, channel
UNION ALL
SELECT 'C'::char(1), interval_start, channel, sum(kwh), count(*)::integer
  FROM {readings_c}
 WHERE interval_start >= %(from_c)s AND interval_start < %(to_c)s
 GROUP BY interval_start, channel
