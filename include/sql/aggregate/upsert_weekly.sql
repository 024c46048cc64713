-- mart.consumption_weekly: ISO weeks (Monday-Sunday, local calendar) that hold a day of
-- agg_days, rolled up from mart.consumption_daily (which keeps archived days). expected_intervals
-- is the whole week's (334, 336 or 338 in Europe/London); days = days with readings; kwh the
-- import, export_kwh the export (NULL when no day of the week had any).
-- tz: parameter.
INSERT INTO mart.consumption_weekly AS m (
    source, meter_id, week_start, iso_year, iso_week, kwh, intervals, expected_intervals, days,
    export_kwh)
WITH w AS MATERIALIZED (  -- each week's expected intervals once, whatever the join order
    SELECT x.source, x.week_start, e.expected
      FROM (SELECT DISTINCT source, date_trunc('week', local_date)::date AS week_start
              FROM agg_days) x
     CROSS JOIN LATERAL (SELECT sum(mart.day_intervals(x.week_start + i, %(tz)s))::integer
                                AS expected
                           FROM generate_series(0, 6) AS i) e)
SELECT c.source, c.meter_id, w.week_start,
       extract(isoyear FROM w.week_start)::integer, extract(week FROM w.week_start)::integer,
       sum(c.kwh), sum(c.intervals), w.expected, count(*), sum(c.export_kwh)
  FROM w
  JOIN mart.consumption_daily c
    ON c.source = w.source AND c.local_date >= w.week_start AND c.local_date < w.week_start + 7
 GROUP BY c.source, c.meter_id, w.week_start, w.expected
ON CONFLICT (source, meter_id, week_start) DO UPDATE SET
    iso_year = excluded.iso_year, iso_week = excluded.iso_week, kwh = excluded.kwh,
    intervals = excluded.intervals, expected_intervals = excluded.expected_intervals,
    days = excluded.days, export_kwh = excluded.export_kwh
 WHERE (m.kwh, m.intervals, m.expected_intervals, m.days, m.export_kwh)
       IS DISTINCT FROM (excluded.kwh, excluded.intervals, excluded.expected_intervals,
                         excluded.days, excluded.export_kwh)
