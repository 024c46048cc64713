-- agg_meter_day: the rows mart.peak_daily would hold for the (source, local day) pairs of
-- agg_days, one per tariff, source, meter and local day, computed once from agg_read's per-meter
-- run sums (a run is one local day and interval class; a tariff's peak band is the classes with
-- its bit set). Means are kWh per half hour, NULL when the band has no interval that day.
-- Totals do not depend on the tariff: mart.consumption_daily takes them from any one tariff's
-- rows. The expected intervals (46, 48 or 50) are computed once per local day.
-- Only the pairs of agg_days: a source's UTC bounds may span days that were not asked for.
-- tariffs, bits (meterflow.tariffs.TariffSet.bits), tz: parameters.
CREATE TEMP TABLE agg_meter_day ON COMMIT DROP AS
SELECT g.tariff, g.source, g.meter_id, g.local_date,
       g.peak_kwh / nullif(g.peak_n, 0)                           AS peak_mean_kwh,
       (g.total_kwh - g.peak_kwh) / nullif(g.total_n - g.peak_n, 0) AS offpeak_mean_kwh,
       g.peak_kwh,
       g.total_kwh - g.peak_kwh                                   AS offpeak_kwh,
       g.total_kwh,
       g.peak_n                                                   AS peak_intervals,
       g.total_n - g.peak_n                                       AS offpeak_intervals,
       g.total_n                                                  AS intervals,
       e.expected                                                 AS expected_intervals,
       round(g.total_n::numeric / e.expected, 4)::numeric(5, 4)  AS completeness
  FROM (SELECT t.tariff, r.source, r.meter_id, s.local_date,
               coalesce(sum(r.kwh) FILTER (WHERE s.class & t.bit <> 0), 0)          AS peak_kwh,
               coalesce(sum(r.n) FILTER (WHERE s.class & t.bit <> 0), 0)::integer  AS peak_n,
               sum(r.kwh)                                                         AS total_kwh,
               sum(r.n)::integer                                                  AS total_n
          FROM agg_read r
          JOIN (SELECT DISTINCT seg, local_date, class FROM agg_slot) s ON s.seg = r.seg
          JOIN agg_days d ON d.source = r.source AND d.local_date = s.local_date
         CROSS JOIN unnest(%(tariffs)s::text[], %(bits)s::integer[]) AS t(tariff, bit)
         WHERE r.meter_id IS NOT NULL
         GROUP BY t.tariff, r.source, r.meter_id, s.local_date) g
  JOIN (SELECT local_date, mart.day_intervals(local_date, %(tz)s) AS expected
          FROM (SELECT DISTINCT local_date FROM agg_days) d) e
    ON e.local_date = g.local_date
