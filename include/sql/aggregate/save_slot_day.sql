-- mart.slot_day from sum_profile (resum), under the same rule as save_meter_day.sql: replaced
-- only by a half hour summed from at least as many readings, and only when it changed.
INSERT INTO mart.slot_day AS m (source, local_date, slot, kwh, readings)
SELECT source, local_date, slot, kwh, readings
  FROM sum_profile
ON CONFLICT (source, local_date, slot) DO UPDATE SET
    kwh = excluded.kwh, readings = excluded.readings
 WHERE excluded.readings >= m.readings
   AND (m.kwh, m.readings) IS DISTINCT FROM (excluded.kwh, excluded.readings)
