-- Average load profile: mean kWh per meter reading in each local half hour of the day (0-47),
-- per source, over local days [date_from, date_to]: of import readings (mean_kwh, readings),
-- and of export readings (export_mean_kwh: NULL where the source has none, export_readings).
SELECT source, slot, (sum(kwh) / nullif(sum(readings), 0))::float8 AS mean_kwh,
       sum(readings) AS readings,
       (sum(export_kwh) / nullif(sum(export_readings), 0))::float8 AS export_mean_kwh,
       sum(export_readings) AS export_readings
  FROM mart.load_profile_daily
 WHERE source = ANY(%(sources)s::char[])
   AND local_date BETWEEN %(date_from)s AND %(date_to)s
 GROUP BY source, slot
 ORDER BY source, slot
