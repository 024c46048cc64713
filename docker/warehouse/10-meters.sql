-- Runs once, when the warehouse volume is first initialised (postgres image
-- /docker-entrypoint-initdb.d). The database `meters` and its owner `meterflow` are created by
-- the image from POSTGRES_DB / POSTGRES_USER; the schema itself comes from the versioned
-- migrations (`python -m meterflow.warehouse migrate`, run by the airflow-init service), never
-- from here, so the same files build the local stack, the team stack and production.

-- Times are stored as timestamptz in UTC; sessions see UTC unless they ask otherwise,
-- as on the local stack (scripts/services.sh starts PostgreSQL with timezone=UTC).
ALTER DATABASE meters SET timezone TO 'UTC';
