-- sum_meter_day: one row per source, meter and local day of sum_days, from one parallel scan
-- of each source table over its days, grouped straight by meter, channel and local day. No
-- per-reading time-zone arithmetic and no join (sum_slot, a temporary table, cannot be read by
-- parallel workers), only binary searches over arrays made from sum_slot:
-- - the local day: width_bucket over day_starts (sum_day_starts.sql), grouped as the day's
--   position and turned back into its date (day_dates) once per group;
-- - every tariff's peak band in the same grouping: peak_kwh and peak_n are arrays with one
--   FILTER per tariff, "width_bucket over the band's bounds is odd" (sum_band_bounds.sql),
--   composed by meterflow.aggregation.meter_days_statement with the bounds as parameters
--   bounds_0, ...; peak_kwh[i] / peak_n[i] belong to the i-th tariff (1-based, in the order of
--   meterflow.tariffs.TariffSet.bits). save_meter_day.sql keeps them in mart.meter_day.
-- Channels (V015, V016): the scan's groups are per channel; the outer grouping (a few rows per
-- meter-day, so a channel's kind is judged once per group, not per reading) makes one row per
-- meter-day from them: import channels (meter.channel_kind 'import': E1, E2, ...) summed into
-- total_kwh and peak_kwh, their intervals and peak_n the most of any one import channel (E1
-- and E2 of one half hour are one interval); export channels into export_kwh (NULL without
-- any) and export_intervals; non-energy channels left out (a meter-day with only those has no
-- row). The default channel's sums (parameter primary, models.DEFAULT_CHANNEL: E1) are taken as
-- they are (max over its one group) and only the other import channels summed onto them: a numeric
-- sum per meter-day cost 0.5 s of CPU per 210k meter-days, a max over one row a fifth of it.
-- Only the pairs of sum_days: a source's UTC bounds may span days that were not asked for.
-- Sorted by the primary key of mart.meter_day (local_date, source, meter_id).
-- {readings_a} {readings_b} {readings_c}: fixed identifiers from meterflow.aggregation.TABLES.
-- day_starts, day_dates, bounds_0, ..., from_a, to_a, from_b, to_b, from_c, to_c: parameters.
CREATE TEMP TABLE sum_meter_day ON COMMIT DROP AS
SELECT g.source, x.local_date, g.meter_id, g.total_kwh, g.intervals, g.peak_kwh, g.peak_n,
       g.export_kwh, g.export_intervals
  FROM (SELECT c.source, c.meter_id, c.day,
               {import_kwh} AS total_kwh,
               coalesce(max(c.n) FILTER (WHERE c.kind = 'import'), 0) AS intervals,
               ARRAY[{import_peak_kwh}] AS peak_kwh, ARRAY[{import_peak_n}] AS peak_n,
               sum(c.kwh) FILTER (WHERE c.kind = 'export') AS export_kwh,
               coalesce(max(c.n) FILTER (WHERE c.kind = 'export'), 0) AS export_intervals
          FROM (SELECT 'A'::char(1) AS source, meter_id, channel,
                       meter.channel_kind(channel) AS kind,
                       width_bucket(interval_start, %(day_starts)s::timestamptz[]) AS day,
                       sum(kwh) AS kwh, count(*)::integer AS n, {peak_sums}
                  FROM {readings_a}
                 WHERE interval_start >= %(from_a)s AND interval_start < %(to_a)s
                 GROUP BY meter_id, channel, 5
                UNION ALL
                SELECT 'B'::char(1), meter_id, channel, meter.channel_kind(channel),
                       width_bucket(interval_start, %(day_starts)s::timestamptz[]),
                       sum(kwh), count(*)::integer, {peak_sums}
                  FROM {readings_b}
                 WHERE interval_start >= %(from_b)s AND interval_start < %(to_b)s
                 GROUP BY meter_id, channel, 5
                UNION ALL
                SELECT 'C'::char(1), meter_id, channel, meter.channel_kind(channel),
                       width_bucket(interval_start, %(day_starts)s::timestamptz[]),
                       sum(kwh), count(*)::integer, {peak_sums}
                  FROM {readings_c}
                 WHERE interval_start >= %(from_c)s AND interval_start < %(to_c)s
                 GROUP BY meter_id, channel, 5) c
         GROUP BY c.source, c.meter_id, c.day
        HAVING count(*) FILTER (WHERE c.kind <> 'non_energy') > 0) g
 CROSS JOIN LATERAL (SELECT (%(day_dates)s::date[])[g.day] AS local_date) x
  JOIN sum_days d ON d.source = g.source AND d.local_date = x.local_date
 ORDER BY x.local_date, g.source, g.meter_id
