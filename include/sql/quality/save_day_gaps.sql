-- The batch's meter-channel-days whose distinct intervals differ from their local day's (48,
-- 46 or 50), from the arrays of profile.sql: what the day_complete check reports ({gaps} in
-- its rows_query).
COPY staging.batch_day_gap
     (batch_id, meter_id, channel, local_day, readings, intervals, expected)
FROM STDIN
