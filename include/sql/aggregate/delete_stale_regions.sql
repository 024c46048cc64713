-- Regions of recomputed days that no meter is in any more (a meter moved region in
-- meter.meter since the day was last computed).
DELETE FROM mart.consumption_by_region m
 USING agg_days d
 WHERE m.source = d.source AND m.local_date = d.local_date
   AND NOT EXISTS (
       SELECT 1
         FROM mart.consumption_daily c
         LEFT JOIN meter.meter r ON r.meter_id = c.meter_id
        WHERE c.source = m.source AND c.local_date = m.local_date
          AND coalesce(r.region, 'unassigned') = m.region)
