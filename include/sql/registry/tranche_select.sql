-- Select the next tranche (meterflow.lifecycle.select_tranche): whole sites of eligible
-- meters, the site whose meter became eligible first going first, until the next site would
-- take the tranche past its size. Marks them selected (the status trigger writes history)
-- and lists them in meter.tranche_meter.
-- Parameters: tranche_id, size, reason. Returns one row: meters, sites.
WITH sites AS (
    SELECT meter.site_key(site, meter_id) AS site_key, min(status_since) AS since,
           count(*) AS n
      FROM meter.meter
     WHERE status = 'eligible'
     GROUP BY 1
), ordered AS (
    SELECT site_key, sum(n) OVER (ORDER BY since, site_key) AS running
      FROM sites
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
