-- An ALL exclusion-list file (meterflow.lifecycle): the file is the whole list. Meters on the
-- list and not in the file come off it, new ones go on, a different code is changed — in the
-- caller's one transaction, so a reader sees the old list or the new one, never a mix. The
-- site rule follows through the triggers on meter.exclusion (V020).
-- Parameters: list, load_id, arrays meter_id, code (one entry per meter).
-- Returns one row: added, changed, removed.
WITH f AS (
    SELECT * FROM unnest(%(meter_id)s::text[], %(code)s::text[]) AS f (meter_id, code)
), removed AS (
    DELETE FROM meter.exclusion e
     WHERE e.list_name = %(list)s
       AND NOT EXISTS (SELECT 1 FROM f WHERE f.meter_id = e.meter_id)
    RETURNING 1
), upserted AS (
    INSERT INTO meter.exclusion AS e (list_name, meter_id, code, load_id)
    SELECT %(list)s, meter_id, code, %(load_id)s FROM f
    ON CONFLICT (list_name, meter_id) DO UPDATE
       SET code = excluded.code, load_id = excluded.load_id, added_at = clock_timestamp()
     WHERE e.code <> excluded.code
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM upserted WHERE inserted) AS added,
       (SELECT count(*) FROM upserted WHERE NOT inserted) AS changed,
       (SELECT count(*) FROM removed) AS removed;
