-- mart.peak_daily for every tariff from agg_stage: one row per tariff, source, meter and local
-- day. A tariff's peak band is the classes with its bit set. Means are kWh per half hour; NULL
-- when the band has no interval that day. A row is replaced only by one computed from at least
-- as many intervals (archived readings never shrink a mart row), and only when a value changed.
-- The expected intervals are computed once per local day, not once per row.
-- tariffs, bits (meterflow.tariffs.TariffSet.bits), tz: parameters.
INSERT INTO mart.peak_daily AS m (
    tariff, source, meter_id, local_date, peak_mean_kwh, offpeak_mean_kwh, peak_kwh, offpeak_kwh,
    total_kwh, peak_intervals, offpeak_intervals, intervals, expected_intervals, completeness)
SELECT g.tariff, g.source, g.meter_id, g.local_date,
       g.peak_kwh / nullif(g.peak_n, 0),
       (g.total_kwh - g.peak_kwh) / nullif(g.total_n - g.peak_n, 0),
       g.peak_kwh, g.total_kwh - g.peak_kwh, g.total_kwh,
       g.peak_n, g.total_n - g.peak_n, g.total_n,
       e.expected, round(g.total_n::numeric / e.expected, 4)
  FROM (SELECT t.tariff, s.source, s.meter_id, s.local_date,
               coalesce(sum(s.kwh) FILTER (WHERE s.class & t.bit <> 0), 0) AS peak_kwh,
               coalesce(sum(s.n) FILTER (WHERE s.class & t.bit <> 0), 0)   AS peak_n,
               sum(s.kwh)                                                  AS total_kwh,
               sum(s.n)                                                    AS total_n
          FROM agg_stage s
         CROSS JOIN unnest(%(tariffs)s::text[], %(bits)s::integer[]) AS t(tariff, bit)
         WHERE s.meter_id IS NOT NULL
         GROUP BY t.tariff, s.source, s.meter_id, s.local_date) g
  JOIN (SELECT local_date, mart.day_intervals(local_date, %(tz)s) AS expected
          FROM (SELECT DISTINCT local_date FROM agg_days) d) e
    ON e.local_date = g.local_date
ON CONFLICT (tariff, source, meter_id, local_date) DO UPDATE SET
    peak_mean_kwh = excluded.peak_mean_kwh, offpeak_mean_kwh = excluded.offpeak_mean_kwh,
    peak_kwh = excluded.peak_kwh, offpeak_kwh = excluded.offpeak_kwh,
    total_kwh = excluded.total_kwh, peak_intervals = excluded.peak_intervals,
    offpeak_intervals = excluded.offpeak_intervals, intervals = excluded.intervals,
    expected_intervals = excluded.expected_intervals, completeness = excluded.completeness
 WHERE excluded.intervals >= m.intervals
   AND (m.peak_kwh, m.offpeak_kwh, m.peak_intervals, m.intervals, m.expected_intervals)
       IS DISTINCT FROM (excluded.peak_kwh, excluded.offpeak_kwh, excluded.peak_intervals,
                         excluded.intervals, excluded.expected_intervals)
