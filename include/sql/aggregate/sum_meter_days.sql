-- sum_meter_day: one row per source, meter and local day of sum_days, from one parallel scan
-- of each source table over its days, grouped straight by meter and local day. No per-reading
-- time-zone arithmetic and no join (sum_slot, a temporary table, cannot be read by parallel
-- workers), only binary searches over arrays made from sum_slot:
-- - the local day: width_bucket over day_starts (sum_day_starts.sql), grouped as the day's
--   position and turned back into its date (day_dates) once per group;
-- - every tariff's peak band in the same grouping: peak_kwh and peak_n are arrays with one
--   FILTER per tariff, "width_bucket over the band's bounds is odd" (sum_band_bounds.sql),
--   composed by meterflow.aggregation.meter_days_statement with the bounds as parameters
--   bounds_0, ...; peak_kwh[i] / peak_n[i] belong to the i-th tariff (1-based, in the order of
--   meterflow.tariffs.TariffSet.bits). save_meter_day.sql keeps them in mart.meter_day.
-- Only the pairs of sum_days: a source's UTC bounds may span days that were not asked for.
-- Sorted by the primary key of mart.meter_day (local_date, source, meter_id).
-- {readings_a} {readings_b} {readings_c}: fixed identifiers from meterflow.aggregation.TABLES.
-- day_starts, day_dates, bounds_0, ..., from_a, to_a, from_b, to_b, from_c, to_c: parameters.
CREATE TEMP TABLE sum_meter_day ON COMMIT DROP AS
SELECT g.source, x.local_date, g.meter_id, g.total_kwh, g.intervals, g.peak_kwh, g.peak_n
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
  JOIN sum_days d ON d.source = g.source AND d.local_date = x.local_date
 ORDER BY x.local_date, g.source, g.meter_id
