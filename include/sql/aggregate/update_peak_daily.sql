-- mart.peak_daily rows of agg_meter_day that exist and changed: rewritten only when a value
-- changed (a second refresh of the same days writes nothing, not even a row lock) and only by a
-- row computed from at least as many intervals (archived readings never shrink a mart row).
-- insert_peak_daily.sql then adds the rows that do not exist yet. UPDATE + INSERT instead of
-- INSERT ... ON CONFLICT, which locks every conflicting row even when it leaves it unchanged.
-- date_from, date_to: the first and last local day of agg_days (bounds the mart rows read).
UPDATE mart.peak_daily m SET
       peak_mean_kwh = n.peak_mean_kwh, offpeak_mean_kwh = n.offpeak_mean_kwh,
       peak_kwh = n.peak_kwh, offpeak_kwh = n.offpeak_kwh, total_kwh = n.total_kwh,
       peak_intervals = n.peak_intervals, offpeak_intervals = n.offpeak_intervals,
       intervals = n.intervals, expected_intervals = n.expected_intervals,
       completeness = n.completeness
  FROM agg_meter_day n
 WHERE m.tariff = n.tariff AND m.source = n.source AND m.meter_id = n.meter_id
   AND m.local_date = n.local_date
   AND m.local_date BETWEEN %(date_from)s AND %(date_to)s
   AND n.intervals >= m.intervals
   AND (m.peak_kwh, m.offpeak_kwh, m.peak_intervals, m.intervals, m.expected_intervals)
       IS DISTINCT FROM (n.peak_kwh, n.offpeak_kwh, n.peak_intervals, n.intervals,
                         n.expected_intervals)
