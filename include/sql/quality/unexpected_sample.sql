-- What a failed check found: how many rows, and the first few of them. {query} is the check's
-- rows_query from include/expectations (never from input), with {rows} replaced by
-- batch_rows.sql (the batch's staging rows), {profile} by batch_profile.sql and {gaps} by
-- batch_day_gaps.sql. Run only for a check that failed, so a clean batch costs nothing here.
SELECT count(*) OVER () AS unexpected_total, unexpected.*
  FROM ({query}) AS unexpected
 LIMIT %(limit)s
