-- Drop from agg_days the days whose readings are as their last refresh saw them: same count and
-- sum of row versions (agg_check) and the same tariff fingerprint in mart.refresh_mark. A day
-- with no reading counts 0. Skips nothing when a reading is off the 30-minute grid (not a half
-- hour of agg_slot), so the full refresh stops and names it. fingerprint: parameter.
DELETE FROM agg_days d
 USING mart.refresh_mark m,
       (SELECT a.source, a.local_date,
               coalesce(sum(k.n), 0) AS readings, coalesce(sum(k.v), 0) AS versions
          FROM agg_days a
          JOIN agg_slot s ON s.local_date = a.local_date
          LEFT JOIN agg_check k ON k.source = a.source AND k.interval_start = s.utc
         GROUP BY a.source, a.local_date) c
 WHERE m.source = d.source AND m.local_date = d.local_date AND m.tariffs = %(fingerprint)s
   AND c.source = d.source AND c.local_date = d.local_date
   AND (m.readings, m.versions) = (c.readings, c.versions)
   AND NOT EXISTS (SELECT 1 FROM agg_check k  -- a hashed subplan: agg_slot.utc is never NULL
                    WHERE k.interval_start NOT IN (SELECT utc FROM agg_slot))
