-- mart.peak_daily rows of one tariff (the i-th of agg_meter_day's peak arrays) that exist and
-- changed: rewritten only when a value changed (a second refresh of the same days writes
-- nothing, not even a row lock) and only by a row computed from at least as many intervals
-- (archived readings never shrink a mart row). insert_peak_daily.sql then adds the rows that
-- do not exist yet. UPDATE + INSERT instead of INSERT ... ON CONFLICT, which locks every
-- conflicting row even when it leaves it unchanged. Means are kWh per half hour, NULL when the
-- band has no interval that day.
-- Rows whose sums are under other tariffs (NULL arrays, stage_meter_days.sql) are left out.
-- Import only (V016): kWh, intervals and means are of the meter's import channels.
-- tariff, i (its 1-based position in the arrays), date_from, date_to (the first and last local
-- day of agg_days: bounds the mart rows read): parameters.
UPDATE mart.peak_daily m SET
       peak_mean_kwh = n.peak_kwh / nullif(n.peak_n, 0),
       offpeak_mean_kwh = (n.total_kwh - n.peak_kwh) / nullif(n.intervals - n.peak_n, 0),
       peak_kwh = n.peak_kwh, offpeak_kwh = n.total_kwh - n.peak_kwh, total_kwh = n.total_kwh,
       peak_intervals = n.peak_n, offpeak_intervals = n.intervals - n.peak_n,
       intervals = n.intervals, expected_intervals = n.expected_intervals,
       completeness = n.completeness
  FROM (SELECT source, meter_id, local_date, total_kwh, intervals, expected_intervals,
               completeness, peak_kwh[%(i)s] AS peak_kwh, peak_n[%(i)s] AS peak_n
          FROM agg_meter_day
         WHERE peak_kwh IS NOT NULL) n
 WHERE m.tariff = %(tariff)s AND m.source = n.source AND m.meter_id = n.meter_id
   AND m.local_date = n.local_date
   AND m.local_date BETWEEN %(date_from)s AND %(date_to)s
   AND n.intervals >= m.intervals
   AND (m.peak_kwh, m.offpeak_kwh, m.peak_intervals, m.intervals, m.expected_intervals)
       IS DISTINCT FROM (n.peak_kwh, n.total_kwh - n.peak_kwh, n.peak_n, n.intervals,
                         n.expected_intervals)
