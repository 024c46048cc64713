-- One row per run of missing half hours (consecutive half hours of a series, vee_missing.grp).
-- The known readings either side and the method are filled in by gap_near.sql, gap_far.sql
-- and gap_method.sql.
CREATE TEMP TABLE vee_gap ON COMMIT DROP AS
SELECT meter_id, channel, grp, min(interval_start) AS first, max(interval_start) AS last,
       count(*) AS n, NULL::timestamptz AS prev_at, NULL::numeric AS prev_kwh,
       NULL::timestamptz AS next_at, NULL::numeric AS next_kwh,
       NULL::integer AS gap_intervals, NULL::text AS method
  FROM vee_missing GROUP BY meter_id, channel, grp;
