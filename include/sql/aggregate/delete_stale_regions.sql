-- Regions of asked days that no meter is in any more (a meter moved region in meter.meter since
-- the day was last computed): the days' region rows EXCEPT the regions their meters are in now,
-- one set operation rather than a probe of mart.consumption_daily per region row.
DELETE FROM mart.consumption_by_region m
 USING (SELECT x.local_date, x.source, x.region
          FROM mart.consumption_by_region x
          JOIN agg_asked d ON d.source = x.source AND d.local_date = x.local_date
        EXCEPT
        SELECT c.local_date, c.source, coalesce(r.region, 'unassigned')
          FROM agg_asked d
          JOIN mart.consumption_daily c ON c.source = d.source AND c.local_date = d.local_date
          LEFT JOIN meter.meter r ON r.meter_id = c.meter_id) s
 WHERE m.local_date = s.local_date AND m.source = s.source AND m.region = s.region
