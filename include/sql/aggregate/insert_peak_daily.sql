-- mart.peak_daily rows of one tariff (the i-th of agg_meter_day's peak arrays) that do not
-- exist yet (update_peak_daily.sql has rewritten the changed ones), in agg_meter_day's order
-- (the primary key's, within one tariff). refresh holds an advisory lock, so no other refresh
-- inserts the same keys meanwhile.
-- Rows whose sums are under other tariffs (NULL arrays, stage_meter_days.sql) are left out, and
-- meter-days without an import interval (export only, V016): the means are of import.
-- tariff, i, date_from, date_to (the first and last local day of agg_days): parameters.
INSERT INTO mart.peak_daily (
    tariff, source, meter_id, local_date, peak_mean_kwh, offpeak_mean_kwh, peak_kwh, offpeak_kwh,
    total_kwh, peak_intervals, offpeak_intervals, intervals, expected_intervals, completeness)
SELECT %(tariff)s::text, n.source, n.meter_id, n.local_date,
       n.peak_kwh / nullif(n.peak_n, 0),
       (n.total_kwh - n.peak_kwh) / nullif(n.intervals - n.peak_n, 0),
       n.peak_kwh, n.total_kwh - n.peak_kwh, n.total_kwh,
       n.peak_n, n.intervals - n.peak_n, n.intervals, n.expected_intervals, n.completeness
  FROM (SELECT source, meter_id, local_date, total_kwh, intervals, expected_intervals,
               completeness, peak_kwh[%(i)s] AS peak_kwh, peak_n[%(i)s] AS peak_n
          FROM agg_meter_day
         WHERE peak_kwh IS NOT NULL AND intervals > 0) n
 WHERE NOT EXISTS (
       SELECT 1 FROM mart.peak_daily m
        WHERE m.tariff = %(tariff)s AND m.source = n.source AND m.meter_id = n.meter_id
          AND m.local_date = n.local_date
          AND m.local_date BETWEEN %(date_from)s AND %(date_to)s)
