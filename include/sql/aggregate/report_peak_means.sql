-- Daily peak and off-peak mean import kWh per half hour of each source (all its meters) for one
-- tariff over local days [date_from, date_to]. tariff, sources, date_from, date_to: parameters.
SELECT source, local_date, peak_mean_kwh::float8, offpeak_mean_kwh::float8, total_kwh::float8,
       meters
  FROM mart.source_peak_daily
 WHERE tariff = %(tariff)s
   AND source = ANY(%(sources)s::char[])
   AND local_date BETWEEN %(date_from)s AND %(date_to)s
 ORDER BY source, local_date
