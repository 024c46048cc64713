-- The figures the suite judges, per meter and channel of one batch (issue 17: E1 and B1 of one
-- meter on the same intervals are two series, each unique and complete on its own), with the
-- channel's incomplete local days as arrays: one parallel scan of the batch's staging rows, one
-- hash aggregate per meter, channel and local day, and one per meter and channel. A plain SELECT, which PostgreSQL plans in parallel (an
-- INSERT ... SELECT is not, and took twice as long); meterflow.quality.profile_batch copies
-- its ~100 rows into staging.batch_profile (save_profile.sql) and the days into
-- staging.batch_day_gap (save_day_gaps.sql, V014). Writing the ~100k meter-days to a temporary
-- table and summing them from there took ~0.05 s more per 5M rows.
--
-- A local day has at most 50 half hours, and each of its aligned intervals sets its own bit of
-- a bigint: bit_or of those bits is the set of intervals present, its popcount the distinct
-- intervals, readings - misaligned - intervals the duplicates, all without sorting 5 million
-- keys. A misaligned reading counts as an interval of its own (it is reported by
-- interval_aligned, not again as a gap in the day).
-- The bit is bits 9-14 of the timestamp's microseconds since 2000-01-01, the int64 that
-- timestamptz_send gives (PostgreSQL's binary format, big-endian: byte 6 holds bits 8-15).
-- Half hours are 1.8e9 us = 2^9 x 3515625 apart, and 3515625 is odd, so 64 consecutive
-- aligned intervals give 64 different values of those six bits. This costs 0.7 s less CPU per
-- 5M rows than date_part('epoch', ...) / 1800 mod 64, which parses its field name on every row.
-- A reading's local day: day_dates[width_bucket over day_starts] (meterflow.quality.day_grid:
-- the UTC starts of ten years of local days, a binary search instead of a time-zone
-- conversion per row), and that day's intervals day_intervals[the same]; outside that grid,
-- AT TIME ZONE and mart.day_intervals. %(tz)s is setting local_tz (validated).
SELECT meter_id,
       channel,
       count(*)::integer AS days,
       sum(readings)::bigint AS readings,
       sum(null_kwh)::bigint AS null_kwh,
       min(min_kwh) AS min_kwh,
       max(max_kwh) AS max_kwh,
       sum(estimated)::bigint AS estimated,
       sum(future)::bigint AS future,
       sum(misaligned)::bigint AS misaligned,
       sum(duplicates)::bigint AS duplicates,
       count(*) FILTER (WHERE intervals <> expected)::integer AS incomplete_days,
       -- unordered: an ORDER BY here makes the planner sort all 5M rows
       array_agg(local_day) FILTER (WHERE intervals <> expected) AS gap_days,
       array_agg(readings) FILTER (WHERE intervals <> expected) AS gap_readings,
       array_agg(intervals) FILTER (WHERE intervals <> expected) AS gap_intervals,
       array_agg(expected) FILTER (WHERE intervals <> expected) AS gap_expected
  FROM (SELECT meter_id,
              channel,
              coalesce(off_grid_day, (%(day_dates)s::date[])[day_no]) AS local_day,
              readings,
              readings - with_kwh AS null_kwh,
              min_kwh,
              max_kwh,
              estimated,
              future,
              misaligned,
              readings - misaligned - bit_count(slots::bit(64)) AS duplicates,
              (bit_count(slots::bit(64)) + misaligned)::integer AS intervals,
              coalesce(mart.day_intervals(off_grid_day, %(tz)s),
                       (%(day_intervals)s::integer[])[day_no]) AS expected
         FROM (SELECT meter_id,
                      channel,
                      width_bucket(interval_start, %(day_starts)s::timestamptz[]) AS day_no,
                      CASE WHEN interval_start < %(grid_from)s
                             OR interval_start >= %(grid_to)s
                           THEN (interval_start AT TIME ZONE %(tz)s)::date END AS off_grid_day,
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
                      coalesce(bit_or(1::bigint
                                      << ((get_byte(timestamptz_send(interval_start), 6) >> 1)
                                          & 63))
                                   FILTER (WHERE interval_start
                                                 = date_bin('30 minutes', interval_start,
                                                            timestamptz '2000-01-01 00:00Z')),
                               0) AS slots
                 FROM staging.reading
                WHERE batch_id = %(batch_id)s
                GROUP BY 1, 2, 3, 4) AS per_day
       ) AS meter_day
 GROUP BY meter_id, channel
