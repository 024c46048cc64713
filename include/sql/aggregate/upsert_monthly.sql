-- mart.consumption_monthly: local calendar months that hold a day of agg_days, rolled up from
-- mart.consumption_daily. expected_intervals is the whole month's; kwh the import, export_kwh the
-- export (NULL when no day of the month had any). tz: parameter.
INSERT INTO mart.consumption_monthly AS m (
    source, meter_id, month, kwh, intervals, expected_intervals, days, export_kwh)
WITH mo AS MATERIALIZED (  -- each month's expected intervals once, whatever the join order
    SELECT x.source, x.month, e.expected
      FROM (SELECT DISTINCT source, date_trunc('month', local_date)::date AS month
              FROM agg_days) x
     CROSS JOIN LATERAL (SELECT sum(mart.day_intervals(d::date, %(tz)s))::integer AS expected
                           FROM generate_series(x.month,
                                                (x.month + interval '1 month - 1 day')::date,
                                                interval '1 day') AS d) e)
SELECT c.source, c.meter_id, mo.month, sum(c.kwh), sum(c.intervals), mo.expected, count(*),
       sum(c.export_kwh)
  FROM mo
  JOIN mart.consumption_daily c
    ON c.source = mo.source AND c.local_date >= mo.month
   AND c.local_date < (mo.month + interval '1 month')::date
 GROUP BY c.source, c.meter_id, mo.month, mo.expected
ON CONFLICT (source, meter_id, month) DO UPDATE SET
    kwh = excluded.kwh, intervals = excluded.intervals,
    expected_intervals = excluded.expected_intervals, days = excluded.days,
    export_kwh = excluded.export_kwh
 WHERE (m.kwh, m.intervals, m.expected_intervals, m.days, m.export_kwh)
       IS DISTINCT FROM (excluded.kwh, excluded.intervals, excluded.expected_intervals,
                         excluded.days, excluded.export_kwh)
