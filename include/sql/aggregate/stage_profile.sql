-- agg_profile: the half-hour day sums (mart.slot_day) of the days of agg_days: import kWh and
-- readings, export kWh and readings.
INSERT INTO agg_profile (source, local_date, slot, kwh, n, export_kwh, export_n)
SELECT s.source, s.local_date, s.slot, s.kwh, s.readings, s.export_kwh, s.export_readings
  FROM mart.slot_day s
  JOIN agg_days d ON d.source = s.source AND d.local_date = s.local_date
