-- mart.load_profile_daily from agg_stage: all meters of a source summed per local day and local
-- half hour of the day. Same replacement rule as peak_daily.
INSERT INTO mart.load_profile_daily AS m (source, local_date, slot, kwh, readings)
SELECT source, local_date, slot, kwh, n
  FROM agg_stage
 WHERE slot IS NOT NULL
ON CONFLICT (source, local_date, slot) DO UPDATE SET
    kwh = excluded.kwh, readings = excluded.readings
 WHERE excluded.readings >= m.readings
   AND (m.kwh, m.readings) IS DISTINCT FROM (excluded.kwh, excluded.readings)
