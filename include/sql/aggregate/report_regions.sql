-- kWh per region and source over local days [date_from, date_to]: import (kwh) and export
-- (export_kwh, NULL where no meter of the region and source had any).
SELECT region, source, sum(kwh)::float8 AS kwh, sum(export_kwh)::float8 AS export_kwh
  FROM mart.consumption_by_region
 WHERE source = ANY(%(sources)s::char[])
   AND local_date BETWEEN %(date_from)s AND %(date_to)s
 GROUP BY region, source
 ORDER BY region, source
