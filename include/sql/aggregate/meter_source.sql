-- The source (A|B|C) of a registered meter.
SELECT source FROM meter.meter WHERE meter_id = %(meter_id)s
