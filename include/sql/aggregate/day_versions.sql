-- The version of each agg_days pair's day sums (mart.day_sum), read once: save_marks.sql
-- records this version, never a newer one a promotion committed meanwhile.
UPDATE agg_days d SET version = s.version
  FROM mart.day_sum s
 WHERE s.source = d.source AND s.local_date = d.local_date
