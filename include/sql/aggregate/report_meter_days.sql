-- Import kWh of each meter on each local day over [date_from, date_to] (the heatmap).
SELECT meter_id, local_date, kwh::float8
  FROM mart.consumption_daily
 WHERE source = ANY(%(sources)s::char[])
   AND local_date BETWEEN %(date_from)s AND %(date_to)s
 ORDER BY meter_id, local_date
