-- A few of the rows a failed unexpected_rows_expectation found. GX keeps them only in its
-- COMPLETE result format, which would also return every unexpected value of the column
-- expectations, so the gate runs SUMMARY and asks for this sample only when the check failed.
-- {query} is the suite's unexpected_rows_query (from include/expectations, never from input),
-- with {batch} replaced by batch_rows.sql.
SELECT *
  FROM ({query}) AS unexpected
 LIMIT %(limit)s
