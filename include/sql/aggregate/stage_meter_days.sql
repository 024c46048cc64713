-- agg_meter_day: the day sums (mart.meter_day) of the days of agg_days with each day's expected
-- intervals (46, 48 or 50, computed once per date) and completeness (of import). The peak
-- arrays only where the sums were computed under the refresh's tariffs (fingerprint): a row
-- kept under other tariffs (its day partly archived since) has NULL arrays and no
-- mart.peak_daily rows are written from it (its existing ones stay); its totals still feed
-- consumption_daily. total_kwh and intervals are import, export_kwh and export_intervals
-- export (V016).
-- Sorted by (local_date, source, meter_id): the daily marts' primary keys end with those
-- columns (V013), so the inserts add index entries in order. fingerprint, tz: parameters.
CREATE TEMP TABLE agg_meter_day ON COMMIT DROP AS
SELECT m.source, m.meter_id, m.local_date, m.kwh AS total_kwh, m.intervals,
       CASE WHEN m.tariffs = %(fingerprint)s THEN m.peak_kwh END AS peak_kwh,
       CASE WHEN m.tariffs = %(fingerprint)s THEN m.peak_n END   AS peak_n,
       e.expected                                                 AS expected_intervals,
       round(m.intervals::numeric / e.expected, 4)::numeric(5, 4) AS completeness,
       m.export_kwh, m.export_intervals
  FROM mart.meter_day m
  JOIN agg_days d ON d.source = m.source AND d.local_date = m.local_date
  JOIN (SELECT local_date, mart.day_intervals(local_date, %(tz)s) AS expected
          FROM (SELECT DISTINCT local_date FROM agg_days) a) e
    ON e.local_date = m.local_date
 ORDER BY m.local_date, m.source, m.meter_id
