-- mart.slot_day from sum_profile (resum), under the same rule as save_meter_day.sql: replaced
-- only by a half hour summed from at least as many import and export readings, and only when it
-- changed.
INSERT INTO mart.slot_day AS m (source, local_date, slot, kwh, readings, export_kwh,
                                export_readings)
SELECT source, local_date, slot, kwh, readings, export_kwh, export_readings
  FROM sum_profile
ON CONFLICT (source, local_date, slot) DO UPDATE SET
    kwh = excluded.kwh, readings = excluded.readings, export_kwh = excluded.export_kwh,
    export_readings = excluded.export_readings
 WHERE excluded.readings >= m.readings AND excluded.export_readings >= m.export_readings
   AND (m.kwh, m.readings, m.export_kwh, m.export_readings)
       IS DISTINCT FROM (excluded.kwh, excluded.readings, excluded.export_kwh,
                         excluded.export_readings)
