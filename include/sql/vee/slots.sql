-- Every UTC half hour of [utc_from, utc_to) (whole local days in zone tz), with its local day
-- and local half hour of the day. A spring-forward day has 46 rows, an autumn one 50.
INSERT INTO vee_slot (interval_start, local_date, slot)
SELECT t, (t AT TIME ZONE %(tz)s)::date,
       (extract(hour FROM t AT TIME ZONE %(tz)s) * 2
        + extract(minute FROM t AT TIME ZONE %(tz)s)::integer / 30)::smallint
  FROM generate_series(%(utc_from)s::timestamptz, %(utc_to)s::timestamptz - interval '30 minutes',
                       interval '30 minutes') AS t;
