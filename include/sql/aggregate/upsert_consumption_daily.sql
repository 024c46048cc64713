-- mart.consumption_daily from agg_stage: kWh and intervals per source, meter and local day.
-- Same replacement rule as peak_daily (never shrinks, rewrites only on change). tz: parameter.
INSERT INTO mart.consumption_daily AS m (
    source, meter_id, local_date, kwh, intervals, expected_intervals, completeness)
SELECT g.source, g.meter_id, g.local_date, g.kwh, g.n, e.expected,
       round(g.n::numeric / e.expected, 4)
  FROM (SELECT source, meter_id, local_date, sum(kwh) AS kwh, sum(n) AS n
          FROM agg_stage
         WHERE meter_id IS NOT NULL
         GROUP BY source, meter_id, local_date) g
  JOIN (SELECT local_date, mart.day_intervals(local_date, %(tz)s) AS expected
          FROM (SELECT DISTINCT local_date FROM agg_days) d) e
    ON e.local_date = g.local_date
ON CONFLICT (source, meter_id, local_date) DO UPDATE SET
    kwh = excluded.kwh, intervals = excluded.intervals,
    expected_intervals = excluded.expected_intervals, completeness = excluded.completeness
 WHERE excluded.intervals >= m.intervals
   AND (m.kwh, m.intervals, m.expected_intervals)
       IS DISTINCT FROM (excluded.kwh, excluded.intervals, excluded.expected_intervals)
