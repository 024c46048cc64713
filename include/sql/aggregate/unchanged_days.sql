-- Drop from agg_days the days whose day sums are the version their last refresh built the
-- marts from, under the same tariffs: their marts are what a recompute would write.
-- fingerprint: parameter.
DELETE FROM agg_days d
 USING mart.refresh_mark m
 WHERE m.source = d.source AND m.local_date = d.local_date
   AND m.version = d.version AND m.tariffs = %(fingerprint)s
