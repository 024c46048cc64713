-- The gap's full length between its known readings (to the days' end when none follows yet)
-- and its method: LINEAR for at most linear_max half hours between two readings, LIKE_DAY for
-- a longer gap (or one with no reading after it yet) of at most horizon half hours; none
-- beyond, or without a reading before it within the horizon.
UPDATE vee_gap
   SET gap_intervals = (extract(epoch FROM coalesce(next_at, last + interval '30 minutes')
                                           - prev_at) / 1800)::integer - 1,
       method = CASE
         WHEN prev_at IS NULL THEN NULL
         WHEN next_at IS NOT NULL
              AND next_at - prev_at <= interval '30 minutes' * (%(linear_max)s + 1)
              THEN %(linear)s
         WHEN coalesce(next_at, last + interval '30 minutes') - prev_at
              <= interval '30 minutes' * (%(horizon)s + 1) THEN %(like_day)s
       END;
