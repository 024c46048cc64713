-- mart.load_profile_daily from agg_profile: all meters of a source summed per local day and
-- local half hour of the day. Same replacement rule as update_peak_daily.sql (a few thousand
-- rows: ON CONFLICT is cheap enough here).
INSERT INTO mart.load_profile_daily AS m (source, local_date, slot, kwh, readings)
SELECT source, local_date, slot, kwh, n
  FROM agg_profile
ON CONFLICT (source, local_date, slot) DO UPDATE SET
    kwh = excluded.kwh, readings = excluded.readings
 WHERE excluded.readings >= m.readings
   AND (m.kwh, m.readings) IS DISTINCT FROM (excluded.kwh, excluded.readings)
