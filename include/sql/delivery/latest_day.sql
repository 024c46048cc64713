-- The newest reading of the chosen sources: a delivery without a period covers its local day.
SELECT max(m) FROM (
    SELECT max(interval_start) AS m FROM meter.readings_a WHERE 'A' = ANY(%(sources)s)
    UNION ALL
    SELECT max(interval_start) FROM meter.readings_b WHERE 'B' = ANY(%(sources)s)
    UNION ALL
    SELECT max(interval_start) FROM meter.readings_c WHERE 'C' = ANY(%(sources)s)
) x;
