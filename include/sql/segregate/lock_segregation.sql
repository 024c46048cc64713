-- One promoting transaction at a time (whatever the batch): two batches that touch the same
-- (meter, interval) keys in different orders could otherwise deadlock, and the classify →
-- supersede → insert steps of a batch must see the tables as nothing else changes them.
-- Released at commit or rollback. The key is the ASCII of "mfsegr".
SELECT pg_advisory_xact_lock(120286790117234);
