-- Meters are judged as they register (issue 24), not by a second pass over the registry.
--
-- Before: a new meter was inserted 'loaded' and judged later (meter.judge_loaded(), the first
-- step of a tranche), an UPDATE of every new meter. For a freshly loaded 1M registry that
-- UPDATE wrote a second version of 1M rows with their three index entries and 1M history rows:
-- as long as the registration itself (60 s for judging against 12 s for the INSERT on the
-- loaded bench machine, docs/benchmarks.md), however the judging query was planned.
--
-- Now the registering statements (the registry feed's upsert, a promotion's auto-registration)
-- ask meter.initial_status() for the status of their new meters in the same INSERT: a meter
-- whose site has no meter on an exclusion list is inserted 'eligible' (one row version, one
-- history row); the others are inserted 'loaded' and the insert trigger judges their sites at
-- once with the site rule (few: the sites an exclusion touches). A plain INSERT that gives no
-- status still ends judged: the trigger judges every meter it left 'loaded'.

-- The status a new meter should be registered with: 'eligible' when no meter of its site — in
-- the registry or among the given meters — is on an exclusion list; else 'loaded' (the insert
-- trigger then applies the site rule). Set-based: one pass over the given arrays, the
-- exclusion lists and the registry meters on them. `sites` may be NULL (no site known).
CREATE FUNCTION meter.initial_status(meter_ids text[], sites text[])
RETURNS TABLE (meter_id text, status text, reason text)
LANGUAGE sql STABLE AS $$
WITH given AS (
    SELECT g.meter_id, meter.site_key(g.site, g.meter_id) AS site_key
      FROM unnest(meter_ids, sites) AS g (meter_id, site)  -- sites NULL: padded with NULL
), listed AS (
    SELECT g.site_key FROM given g JOIN meter.exclusion e ON e.meter_id = g.meter_id
    UNION
    SELECT meter.site_key(x.site, x.meter_id)
      FROM meter.exclusion e JOIN meter.meter x ON x.meter_id = e.meter_id
)
SELECT g.meter_id,
       CASE WHEN l.site_key IS NULL THEN 'eligible' ELSE 'loaded' END,
       CASE WHEN l.site_key IS NULL THEN 'no exclusion' END
  FROM given g LEFT JOIN listed l ON l.site_key = g.site_key
$$;

CREATE OR REPLACE FUNCTION meter.record_registered() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    keys text[];
BEGIN
    INSERT INTO meter.status_history (meter_id, to_status, exclusion_code, reason, actor)
    SELECT n.meter_id, n.status, n.exclusion_code, coalesce(n.status_reason, 'registered'),
           meter.actor()
      FROM new_rows n;
    -- meters left 'loaded' (an exclusion touches their site, or the INSERT gave no status):
    -- judged now, with their sites
    SELECT array_agg(DISTINCT meter.site_key(n.site, n.meter_id)) INTO keys
      FROM new_rows n WHERE n.status = 'loaded';
    IF keys IS NOT NULL THEN
        PERFORM meter.judge_sites(keys);
    END IF;
    RETURN NULL;
END $$;

-- The site rule for the given sites, planned for their number: index lookups per site for a
-- few, hash joins with fresh statistics for many (a bulk registration makes the table's
-- statistics stale: it looks empty to the planner, which then scans it once per site).
CREATE FUNCTION meter.judge_sites(site_keys text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    nestloop text := current_setting('enable_nestloop');
    changed bigint;
BEGIN
    IF cardinality(site_keys) <= 10000 THEN
        RETURN meter.apply_site_rule(site_keys);
    END IF;
    ANALYZE meter.meter;
    PERFORM set_config('enable_nestloop', 'off', true);
    changed := meter.apply_site_rule(site_keys);
    PERFORM set_config('enable_nestloop', nestloop, true);
    RETURN changed;
END $$;

-- The meters still 'loaded' are few now: a tranche's first step finds them on this small
-- partial index instead of scanning the registry (1M rows) on every run.
CREATE INDEX meter_loaded ON meter.meter (meter_id) WHERE status = 'loaded';

-- Judge every meter still 'loaded' (registered before this migration, or set back by hand).
CREATE OR REPLACE FUNCTION meter.judge_loaded() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    keys text[];
BEGIN
    SELECT array_agg(DISTINCT meter.site_key(site, meter_id)) INTO keys
      FROM meter.meter WHERE status = 'loaded';
    IF keys IS NULL THEN
        RETURN 0;
    END IF;
    RETURN meter.judge_sites(keys);
END $$;

-- The history of an UPDATE joins its old and new rows. A static query in PL/pgSQL keeps the
-- plan of its first call for the session: planned for the few rows of a site-rule change, it
-- joined the 100,000 rows of a later tranche by a nested loop (measured: a 20,000-row UPDATE
-- after a 1-row one took 243 s instead of 0.3 s). EXECUTE plans each call for its row count.
CREATE OR REPLACE FUNCTION meter.record_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE $sql$
        INSERT INTO meter.status_history (meter_id, from_status, to_status, exclusion_code,
                                          reason, actor)
        SELECT n.meter_id, o.status, n.status, n.exclusion_code,
               coalesce(n.status_reason, 'changed'), meter.actor()
          FROM new_rows n JOIN old_rows o USING (meter_id)
         WHERE (o.status, o.exclusion_code, o.excluded_via)
               IS DISTINCT FROM (n.status, n.exclusion_code, n.excluded_via)
    $sql$;
    RETURN NULL;
END $$;
