-- agg_meter_day: one row per source, meter and local day of agg_days, from one parallel scan of
-- each source table over its days, grouped straight by meter and local day. No per-reading
-- time-zone arithmetic and no join (agg_slot, a temporary table, cannot be read by parallel
-- workers), only binary searches over arrays made from agg_slot:
-- - the local day: width_bucket over day_starts (day_starts.sql), grouped as the day's position
--   and turned back into its date (day_dates) once per group;
-- - every tariff's peak band in the same grouping: peak_kwh and peak_n are arrays with one
--   FILTER per tariff, "width_bucket over the band's bounds is odd" (band_bounds.sql), composed
--   by meterflow.aggregation.meter_days_statement with the bounds as parameters bounds_0, ...;
--   peak_kwh[i] / peak_n[i] belong to the i-th tariff (1-based, in the order of
--   meterflow.tariffs.TariffSet.bits). insert_peak_daily.sql derives each tariff's rows (means,
--   off-peak) from them; consumption_daily takes the totals as they are.
-- The expected intervals (46, 48 or 50) are computed once per local day. Only the pairs of
-- agg_days: a source's UTC bounds may span days that were not asked for.
-- Sorted by (source, meter_id, local_date): the marts' primary keys end with those columns, so
-- the inserts add index entries in order rather than at random places.
-- {readings_a} {readings_b} {readings_c}: fixed identifiers from meterflow.aggregation.TABLES.
-- day_starts, day_dates, bounds_0, ..., from_a, to_a, from_b, to_b, from_c, to_c, tz:
-- parameters.
CREATE TEMP TABLE agg_meter_day ON COMMIT DROP AS
SELECT g.source, g.meter_id, x.local_date, g.total_kwh, g.intervals, g.peak_kwh, g.peak_n,
       e.expected                                                 AS expected_intervals,
       round(g.intervals::numeric / e.expected, 4)::numeric(5, 4) AS completeness
  FROM (SELECT 'A'::char(1) AS source, meter_id,
               width_bucket(interval_start, %(day_starts)s::timestamptz[]) AS day,
               sum(kwh) AS total_kwh, count(*)::integer AS intervals,
               ARRAY[{peak_kwh}] AS peak_kwh, ARRAY[{peak_n}] AS peak_n
          FROM {readings_a}
         WHERE interval_start >= %(from_a)s AND interval_start < %(to_a)s
         GROUP BY meter_id, 3
        UNION ALL
        SELECT 'B'::char(1), meter_id,
               width_bucket(interval_start, %(day_starts)s::timestamptz[]),
               sum(kwh), count(*)::integer, ARRAY[{peak_kwh}], ARRAY[{peak_n}]
          FROM {readings_b}
         WHERE interval_start >= %(from_b)s AND interval_start < %(to_b)s
         GROUP BY meter_id, 3
        UNION ALL
        SELECT 'C'::char(1), meter_id,
               width_bucket(interval_start, %(day_starts)s::timestamptz[]),
               sum(kwh), count(*)::integer, ARRAY[{peak_kwh}], ARRAY[{peak_n}]
          FROM {readings_c}
         WHERE interval_start >= %(from_c)s AND interval_start < %(to_c)s
         GROUP BY meter_id, 3) g
 CROSS JOIN LATERAL (SELECT (%(day_dates)s::date[])[g.day] AS local_date) x
  JOIN agg_days d ON d.source = g.source AND d.local_date = x.local_date
  JOIN (SELECT local_date, mart.day_intervals(local_date, %(tz)s) AS expected
          FROM (SELECT DISTINCT local_date FROM agg_days) a) e
    ON e.local_date = x.local_date
 ORDER BY g.source, g.meter_id, x.local_date
