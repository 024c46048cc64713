-- Select the next tranche (meterflow.lifecycle.select_tranche): whole sites of eligible
-- meters, the site whose meters became eligible first going first (ties by site), until the
-- next site would take the tranche past its size. Marks them selected (the status trigger
-- writes history) and lists them in meter.tranche_meter.
--
-- Only the oldest `size` eligible meters are walked (the partial index meter_eligible), not
-- the whole registry: a site's place is its first meter in that walk, and the sites met in it
-- hold at least `size` meters, so no other site can be in the tranche.
-- Parameters: tranche_id, size, reason. Returns one row: meters, sites.
WITH walk AS (
    SELECT meter.site_key(site, meter_id) AS site_key, status_since
      FROM meter.meter
     WHERE status = 'eligible'
     ORDER BY status_since, meter_id
     LIMIT %(size)s
), sites AS (
    SELECT site_key, min(status_since) AS since FROM walk GROUP BY site_key
), sized AS (
    SELECT s.site_key, s.since,
           (SELECT count(*) FROM meter.meter m
             WHERE meter.site_key(m.site, m.meter_id) = s.site_key
               AND m.status = 'eligible') AS n
      FROM sites s
), ordered AS (
    SELECT site_key, sum(n) OVER (ORDER BY since, site_key COLLATE "C") AS running
      FROM sized
), chosen AS (
    SELECT site_key FROM ordered WHERE running <= %(size)s
), picked AS (
    UPDATE meter.meter m
       SET status = 'selected', status_since = clock_timestamp(), status_reason = %(reason)s
      FROM chosen c
     WHERE meter.site_key(m.site, m.meter_id) = c.site_key AND m.status = 'eligible'
    RETURNING m.meter_id, c.site_key
), listed AS (
    INSERT INTO meter.tranche_meter (tranche_id, meter_id, site_key)
    SELECT %(tranche_id)s, meter_id, site_key FROM picked
    RETURNING site_key
)
SELECT count(*) AS meters, count(DISTINCT site_key) AS sites FROM listed;
