-- The registry feed (meterflow.registry): upsert a file's meters into meter.meter.
-- A known meter takes the file's site, region, owner and capacity where the file has a value — a blank
-- (NULL) never erases a stored value — and is only touched when something changes; its source
-- stays (it comes from its readings). A new meter is inserted, region 'unassigned' when the
-- file leaves it blank, already judged (meter.initial_status, V024: eligible unless an
-- exclusion touches its site). Should a promotion auto-register the meter between the two steps, the
-- insert falls back to the same rule.
-- Parameters: arrays of equal length meter_id, source, site, region, owner, capacity_kwh.
-- Returns one row per meter inserted or changed: inserted = true for a new meter.
WITH f AS (
    SELECT *
      FROM unnest(%(meter_id)s::text[], %(source)s::text[], %(site)s::text[],
                  %(region)s::text[], %(owner)s::text[], %(capacity_kwh)s::numeric[])
           AS f (meter_id, source, site, region, owner, capacity_kwh)
), changed AS (
    UPDATE meter.meter AS m
       SET site   = coalesce(f.site, m.site),
           region = coalesce(f.region, m.region),
           owner  = coalesce(f.owner, m.owner),
           capacity_kwh = coalesce(f.capacity_kwh, m.capacity_kwh)
      FROM f
     WHERE m.meter_id = f.meter_id
       AND (coalesce(f.site, m.site), coalesce(f.region, m.region), coalesce(f.owner, m.owner),
            coalesce(f.capacity_kwh, m.capacity_kwh))
           IS DISTINCT FROM (m.site, m.region, m.owner, m.capacity_kwh)
    RETURNING false AS inserted
), added AS (
    INSERT INTO meter.meter AS m (meter_id, source, site, region, owner, capacity_kwh, status,
                                  status_reason)
    SELECT f.meter_id, f.source, f.site, coalesce(f.region, 'unassigned'), f.owner,
           f.capacity_kwh, j.status, j.reason
      FROM f
      JOIN meter.initial_status(%(meter_id)s::text[], %(site)s::text[]) j USING (meter_id)
     WHERE NOT EXISTS (SELECT 1 FROM meter.meter k WHERE k.meter_id = f.meter_id)
    ON CONFLICT (meter_id) DO UPDATE
       SET site   = coalesce(excluded.site, m.site),
           region = CASE WHEN m.region = 'unassigned' THEN excluded.region ELSE m.region END,
           owner  = coalesce(excluded.owner, m.owner),
           capacity_kwh = coalesce(excluded.capacity_kwh, m.capacity_kwh)
    RETURNING true AS inserted
)
SELECT inserted FROM changed
UNION ALL
SELECT inserted FROM added;
