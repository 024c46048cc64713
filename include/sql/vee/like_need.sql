-- LIKE_DAY, step 1: the series and local days with a missing half hour whose run chose it.
CREATE TEMP TABLE vee_need ON COMMIT DROP AS
SELECT DISTINCT m.meter_id, m.channel, m.local_date
  FROM vee_missing m JOIN vee_gap g USING (meter_id, channel, grp)
 WHERE g.method = %(like_day)s;
