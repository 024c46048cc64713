-- The figures the suite judges, per meter and local day of one batch (staging.batch_profile,
-- V012): one parallel scan of the batch's staging rows and one hash aggregate. Run as
-- CREATE TEMP TABLE ... AS, which PostgreSQL plans in parallel (an INSERT ... SELECT is not,
-- and took twice as long); meterflow.quality then copies the result into batch_profile.
--
-- A local day has at most 50 half hours, so "UTC half-hour number mod 64" is a different bit
-- for each interval of one meter and day: bit_or of those bits is the set of intervals
-- present, its popcount the distinct intervals, readings - misaligned - intervals the
-- duplicates, all without sorting 5 million keys. A misaligned reading counts as an interval
-- of its own (it is reported by interval_aligned, not again as a gap in the day).
-- %(tz)s is setting local_tz (validated).
CREATE TEMP TABLE profile_of_batch ON COMMIT DROP AS
SELECT meter_id,
       local_day,
       readings,
       readings - with_kwh AS null_kwh,
       min_kwh,
       max_kwh,
       estimated,
       future,
       misaligned,
       readings - misaligned - bit_count(slots::bit(64)) AS duplicates,
       (bit_count(slots::bit(64)) + misaligned)::integer AS intervals,
       (date_part('epoch', ((local_day + 1)::timestamp AT TIME ZONE %(tz)s)
                           - (local_day::timestamp AT TIME ZONE %(tz)s)) / 1800)::integer
           AS expected
  FROM (SELECT meter_id,
               (interval_start AT TIME ZONE %(tz)s)::date AS local_day,
               count(*) AS readings,
               count(kwh) AS with_kwh,
               min(kwh) AS min_kwh,
               max(kwh) AS max_kwh,
               count(*) FILTER (WHERE quality = 'E') AS estimated,
               count(*) FILTER (WHERE interval_start > now()) AS future,
               count(*) FILTER (
                   WHERE interval_start <> date_bin('30 minutes', interval_start,
                                                    timestamptz '2000-01-01 00:00Z')
               ) AS misaligned,
               coalesce(bit_or(1::bigint << ((date_part('epoch', interval_start) / 1800)::bigint
                                             %% 64)::integer)
                            FILTER (WHERE interval_start = date_bin('30 minutes', interval_start,
                                                       timestamptz '2000-01-01 00:00Z')),
                        0) AS slots
          FROM staging.reading
         WHERE batch_id = %(batch_id)s
         GROUP BY 1, 2) AS per_day
