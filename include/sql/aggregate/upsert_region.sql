-- mart.consumption_by_region for the days of agg_asked, rolled up from mart.consumption_daily
-- through the meter registry (region as registered now; unknown meters count as 'unassigned').
-- Every asked day, recomputed or not: a meter may have moved region in meter.meter. kwh is the
-- import, export_kwh the export (NULL when no meter of the region had any).
INSERT INTO mart.consumption_by_region AS m (
    local_date, source, region, kwh, meters, intervals, export_kwh)
SELECT d.local_date, d.source, coalesce(r.region, 'unassigned'), sum(c.kwh), count(*),
       sum(c.intervals), sum(c.export_kwh)
  FROM agg_asked d
  JOIN mart.consumption_daily c ON c.source = d.source AND c.local_date = d.local_date
  LEFT JOIN meter.meter r ON r.meter_id = c.meter_id
 GROUP BY d.local_date, d.source, coalesce(r.region, 'unassigned')
ON CONFLICT (local_date, source, region) DO UPDATE SET
    kwh = excluded.kwh, meters = excluded.meters, intervals = excluded.intervals,
    export_kwh = excluded.export_kwh
 WHERE (m.kwh, m.meters, m.intervals, m.export_kwh)
       IS DISTINCT FROM (excluded.kwh, excluded.meters, excluded.intervals, excluded.export_kwh)
