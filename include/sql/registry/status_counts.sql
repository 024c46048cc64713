-- The registry by status and by exclusion code (meterflow.lifecycle.status_counts: the daily
-- email, the dashboard). One row per status of ref.meter_status in lifecycle order and one per
-- code of ref.exclusion_code, each with its name and its meters (0 when none); for a code,
-- `own` counts the meters on a list themselves and `via_site` the others of their sites.
-- One scan of meter.meter.
WITH counted AS (
    SELECT status, exclusion_code,
           count(*) AS meters,
           count(*) FILTER (WHERE excluded_via = meter_id) AS own
      FROM meter.meter
     GROUP BY status, exclusion_code
)
SELECT 'status' AS kind, s.code, s.name, coalesce(sum(c.meters), 0)::bigint AS meters,
       NULL::bigint AS own, NULL::bigint AS via_site,
       array_position(ARRAY['loaded', 'eligible', 'excluded', 'selected', 'notified'],
                      s.code) AS position
  FROM ref.meter_status s LEFT JOIN counted c ON c.status = s.code
 GROUP BY s.code, s.name
UNION ALL
SELECT 'exclusion', e.code, e.name, coalesce(sum(c.meters), 0)::bigint,
       coalesce(sum(c.own), 0)::bigint, coalesce(sum(c.meters - c.own), 0)::bigint, NULL
  FROM ref.exclusion_code e
  LEFT JOIN counted c ON c.exclusion_code = e.code AND c.status = 'excluded'
 GROUP BY e.code, e.name
 ORDER BY kind DESC, position, meters DESC, code
