-- Average load profile: mean kWh per meter reading in each local half hour of the day (0-47),
-- per source, over local days [date_from, date_to].
SELECT source, slot, (sum(kwh) / sum(readings))::float8 AS mean_kwh, sum(readings) AS readings
  FROM mart.load_profile_daily
 WHERE source = ANY(%(sources)s::char[])
   AND local_date BETWEEN %(date_from)s AND %(date_to)s
 GROUP BY source, slot
 ORDER BY source, slot
