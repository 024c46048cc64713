-- Drop the day-sum state (mart.day_sum, V013) of one source's local days that a batch's
-- readings may fall on, from the UTC day before its first reading to the UTC day after its
-- last (any zone's local day of those instants): the next refresh sums them from the readings.
-- Used when a writer of readings could not compute the sums itself (tariffs.yaml unreadable).
-- source, first, last: parameters.
DELETE FROM mart.day_sum
 WHERE source = %(source)s
   AND local_date BETWEEN (%(first)s::timestamptz AT TIME ZONE 'UTC')::date - 1
                      AND (%(last)s::timestamptz AT TIME ZONE 'UTC')::date + 1
