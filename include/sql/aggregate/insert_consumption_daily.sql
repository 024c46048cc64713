-- mart.consumption_daily rows that do not exist yet, from agg_meter_day's totals (import kWh
-- and intervals, export beside them), in its order (the primary key's).
-- date_from, date_to: parameters.
INSERT INTO mart.consumption_daily (
    source, meter_id, local_date, kwh, intervals, expected_intervals, completeness, export_kwh,
    export_intervals)
SELECT n.source, n.meter_id, n.local_date, n.total_kwh, n.intervals, n.expected_intervals,
       n.completeness, n.export_kwh, n.export_intervals
  FROM agg_meter_day n
 WHERE NOT EXISTS (
       SELECT 1 FROM mart.consumption_daily m
        WHERE m.source = n.source AND m.meter_id = n.meter_id AND m.local_date = n.local_date
          AND m.local_date BETWEEN %(date_from)s AND %(date_to)s)
