-- An ADD/REMOVE exclusion-list file (meterflow.lifecycle): each meter's last row in the file
-- decides — REMOVE takes it off the list (absent already: unchanged), ADD puts it on with the
-- row's code (present with the same code: unchanged; another code: changed). The site rule
-- follows through the triggers on meter.exclusion (V020).
-- Parameters: list, load_id, arrays meter_id, code, method (one entry per meter).
-- Returns one row: added, changed, removed.
WITH f AS (
    SELECT * FROM unnest(%(meter_id)s::text[], %(code)s::text[], %(method)s::text[])
                  AS f (meter_id, code, method)
), removed AS (
    DELETE FROM meter.exclusion e
     USING f
     WHERE e.list_name = %(list)s AND e.meter_id = f.meter_id AND f.method = 'REMOVE'
    RETURNING 1
), upserted AS (
    INSERT INTO meter.exclusion AS e (list_name, meter_id, code, load_id)
    SELECT %(list)s, meter_id, code, %(load_id)s FROM f WHERE method = 'ADD'
    ON CONFLICT (list_name, meter_id) DO UPDATE
       SET code = excluded.code, load_id = excluded.load_id, added_at = clock_timestamp()
     WHERE e.code <> excluded.code
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM upserted WHERE inserted) AS added,
       (SELECT count(*) FROM upserted WHERE NOT inserted) AS changed,
       (SELECT count(*) FROM removed) AS removed;
