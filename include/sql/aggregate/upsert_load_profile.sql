-- mart.load_profile_daily from agg_profile: all meters of a source summed per local day and
-- local half hour of the day, import (kwh, readings) and export (export_kwh, export_readings).
-- Same replacement rule as update_peak_daily.sql (a few thousand rows: ON CONFLICT is cheap
-- enough here).
INSERT INTO mart.load_profile_daily AS m (source, local_date, slot, kwh, readings, export_kwh,
                                          export_readings)
SELECT source, local_date, slot, kwh, n, export_kwh, export_n
  FROM agg_profile
ON CONFLICT (source, local_date, slot) DO UPDATE SET
    kwh = excluded.kwh, readings = excluded.readings, export_kwh = excluded.export_kwh,
    export_readings = excluded.export_readings
 WHERE excluded.readings >= m.readings AND excluded.export_readings >= m.export_readings
   AND (m.kwh, m.readings, m.export_kwh, m.export_readings)
       IS DISTINCT FROM (excluded.kwh, excluded.readings, excluded.export_kwh,
                         excluded.export_readings)
