-- mart.consumption_daily rows that exist and changed, from agg_meter_day's totals (a day's
-- totals are the same under every tariff). Same rule as update_peak_daily.sql, for the import
-- and the export intervals. date_from, date_to: parameters.
UPDATE mart.consumption_daily m SET
       kwh = n.total_kwh, intervals = n.intervals, expected_intervals = n.expected_intervals,
       completeness = n.completeness, export_kwh = n.export_kwh,
       export_intervals = n.export_intervals
  FROM agg_meter_day n
 WHERE m.source = n.source AND m.meter_id = n.meter_id AND m.local_date = n.local_date
   AND m.local_date BETWEEN %(date_from)s AND %(date_to)s
   AND n.intervals >= m.intervals AND n.export_intervals >= m.export_intervals
   AND (m.kwh, m.intervals, m.expected_intervals, m.export_kwh, m.export_intervals)
       IS DISTINCT FROM (n.total_kwh, n.intervals, n.expected_intervals, n.export_kwh,
                         n.export_intervals)
