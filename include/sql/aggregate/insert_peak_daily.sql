-- mart.peak_daily rows of agg_meter_day that do not exist yet (update_peak_daily.sql has
-- rewritten the changed ones). refresh holds an advisory lock, so no other refresh inserts the
-- same keys meanwhile.
-- date_from, date_to: the first and last local day of agg_days.
INSERT INTO mart.peak_daily (
    tariff, source, meter_id, local_date, peak_mean_kwh, offpeak_mean_kwh, peak_kwh, offpeak_kwh,
    total_kwh, peak_intervals, offpeak_intervals, intervals, expected_intervals, completeness)
SELECT n.tariff, n.source, n.meter_id, n.local_date, n.peak_mean_kwh, n.offpeak_mean_kwh,
       n.peak_kwh, n.offpeak_kwh, n.total_kwh, n.peak_intervals, n.offpeak_intervals,
       n.intervals, n.expected_intervals, n.completeness
  FROM agg_meter_day n
 WHERE NOT EXISTS (
       SELECT 1 FROM mart.peak_daily m
        WHERE m.tariff = n.tariff AND m.source = n.source AND m.meter_id = n.meter_id
          AND m.local_date = n.local_date
          AND m.local_date BETWEEN %(date_from)s AND %(date_to)s)
