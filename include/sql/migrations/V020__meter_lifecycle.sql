-- Meter lifecycle (issue 24): the registry side of a smart-meter migration programme.
--
-- Every meter has a status (ref.meter_status) and every change of it is a row of
-- meter.status_history (when, who — a file, a tranche run or a user — and why), written by a
-- trigger so no code path can change a status without its history. Exclusion lists arrive as
-- files (meterflow.lifecycle) into meter.exclusion; the site rule is enforced here, by
-- triggers: a meter excluded for any reason excludes every other meter at its site, recorded as
-- "site of <meter>" with the original code, and lifting the last exclusion of a site makes its
-- meters eligible again. Reference tables live in schema ref: they are data of the programme,
-- not of a load, and survive the test suite's truncation of meter/audit.

CREATE SCHEMA IF NOT EXISTS ref;

CREATE TABLE ref.meter_status (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL
);
INSERT INTO ref.meter_status (code, name, description) VALUES
    ('loaded',   'Loaded',   'In the registry, not yet judged against the exclusion lists'),
    ('eligible', 'Eligible', 'No exclusion on the meter or its site: may be chosen for a tranche'),
    ('excluded', 'Excluded', 'On an exclusion list, or at a site with an excluded meter'),
    ('selected', 'Selected', 'Chosen for a tranche; the outbound file has been sent'),
    ('notified', 'Notified', 'Approved in the approval file of its tranche');

CREATE TABLE ref.exclusion_code (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,15}$'),
    name        text NOT NULL,
    description text NOT NULL
);
INSERT INTO ref.exclusion_code (code, name, description) VALUES
    ('NONCOMM',  'Non-communicating', 'The meter has not communicated with the head-end system'),
    ('MANUAL',   'Manual exclusion',  'Excluded by hand by the programme team'),
    ('TODO',     'To-do outstanding', 'A field job (to-do) is outstanding at the meter'),
    ('FIRMWARE', 'Firmware',          'The meter firmware is not supported for migration'),
    ('VULN',     'Vulnerable customer', 'The customer needs an arranged visit, not a remote change'),
    ('SUPPLIER', 'Change of supplier', 'A change of supplier is in progress');

ALTER TABLE meter.meter
    -- the codes of ref.meter_status, as a CHECK rather than a foreign key: a tranche changes
    -- 100,000 statuses at once and a key check per row cost 10 % of it
    ADD COLUMN status text NOT NULL DEFAULT 'loaded'
        CHECK (status IN ('loaded', 'eligible', 'excluded', 'selected', 'notified')),
    ADD COLUMN status_since timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN status_reason text,
    ADD COLUMN exclusion_code text REFERENCES ref.exclusion_code (code),
    ADD COLUMN excluded_via text;  -- the meter whose exclusion applies (itself or one at its site)

-- The site a meter belongs to for the site rule: its site, or itself when it has none.
CREATE FUNCTION meter.site_key(site text, meter_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(site, meter_id) $$;

CREATE INDEX meter_site_key ON meter.meter (meter.site_key(site, meter_id));
-- Tranche selection reads the eligible meters, oldest first.
CREATE INDEX meter_eligible ON meter.meter (status_since, meter_id) WHERE status = 'eligible';

-- No foreign keys here: the statuses and codes are checked on meter.meter, and a history row
-- per change must stay cheap (a tranche of 100,000 meters writes 100,000 of them).
CREATE TABLE meter.status_history (
    history_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id       text        NOT NULL,
    from_status    text,
    to_status      text        NOT NULL,
    exclusion_code text,
    reason         text,
    actor          text        NOT NULL,  -- file:<name>, tranche:<id>, or the database user
    changed_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX status_history_meter ON meter.status_history (meter_id, history_id);

-- Who makes a change: the loader sets `meterflow.actor` for its transaction
-- (set_config('meterflow.actor', 'file:x.csv', true)); otherwise the database user.
CREATE FUNCTION meter.actor() RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('meterflow.actor', true), ''), session_user::text) $$;

-- Meters registered before this migration start 'loaded', with that as their first history row.
INSERT INTO meter.status_history (meter_id, to_status, reason, actor)
SELECT meter_id, 'loaded', 'in the registry before statuses existed', 'migration V020'
  FROM meter.meter;

-- History is written per statement from the transition tables: set-based, one INSERT for a
-- tranche of 100,000 rather than 100,000 trigger calls.
CREATE FUNCTION meter.record_registered() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO meter.status_history (meter_id, to_status, exclusion_code, reason, actor)
    SELECT n.meter_id, n.status, n.exclusion_code, coalesce(n.status_reason, 'registered'),
           meter.actor()
      FROM new_rows n;
    RETURN NULL;
END $$;

CREATE FUNCTION meter.record_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO meter.status_history (meter_id, from_status, to_status, exclusion_code, reason,
                                      actor)
    SELECT n.meter_id, o.status, n.status, n.exclusion_code,
           coalesce(n.status_reason, 'changed'), meter.actor()
      FROM new_rows n JOIN old_rows o USING (meter_id)
     WHERE (o.status, o.exclusion_code, o.excluded_via)
           IS DISTINCT FROM (n.status, n.exclusion_code, n.excluded_via);
    RETURN NULL;
END $$;

CREATE TRIGGER meter_status_registered AFTER INSERT ON meter.meter
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meter.record_registered();
CREATE TRIGGER meter_status_changed AFTER UPDATE ON meter.meter
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meter.record_status();

-- One row per meter on an exclusion list (a list is a landing feed). A meter may be on several
-- lists; it need not be registered yet (the rule applies once it is).
CREATE TABLE meter.exclusion (
    list_name  text        NOT NULL,
    meter_id   text        NOT NULL,
    code       text        NOT NULL REFERENCES ref.exclusion_code (code),
    added_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    load_id    bigint,     -- audit.list_load of the file that added it
    PRIMARY KEY (list_name, meter_id)
);
CREATE INDEX exclusion_meter ON meter.exclusion (meter_id);

-- Re-judge the meters of the given sites that are not in a tranche (loaded, eligible,
-- excluded): excluded when the meter or any meter of its site is on a list — its own
-- exclusion first, else the site's earliest, recorded as "site of <meter>" — else eligible.
-- Returns the number of meters whose status or cause changed.
CREATE FUNCTION meter.apply_site_rule(site_keys text[]) RETURNS bigint
LANGUAGE sql AS $$
WITH keys AS (
    SELECT DISTINCT k AS site_key FROM unnest(site_keys) k WHERE k IS NOT NULL
), affected AS (
    SELECT m.meter_id, meter.site_key(m.site, m.meter_id) AS site_key
      FROM meter.meter m
      JOIN keys ON keys.site_key = meter.site_key(m.site, m.meter_id)
     WHERE m.status IN ('loaded', 'eligible', 'excluded')
), site_cause AS (
    SELECT DISTINCT ON (keys.site_key) keys.site_key, e.meter_id AS via, e.code
      FROM keys
      JOIN meter.meter x ON meter.site_key(x.site, x.meter_id) = keys.site_key
      JOIN meter.exclusion e ON e.meter_id = x.meter_id
     ORDER BY keys.site_key, e.added_at, e.meter_id, e.code
), own_cause AS (
    SELECT DISTINCT ON (e.meter_id) e.meter_id, e.code
      FROM meter.exclusion e JOIN affected a ON a.meter_id = e.meter_id
     ORDER BY e.meter_id, e.added_at, e.code
), judged AS (
    SELECT a.meter_id,
           coalesce(o.code, s.code) AS code,
           CASE WHEN o.code IS NOT NULL THEN a.meter_id ELSE s.via END AS via,
           CASE WHEN o.code IS NOT NULL THEN c.name
                WHEN s.code IS NOT NULL THEN 'site of ' || s.via END AS reason
      FROM affected a
      LEFT JOIN own_cause o ON o.meter_id = a.meter_id
      LEFT JOIN site_cause s ON s.site_key = a.site_key
      LEFT JOIN ref.exclusion_code c ON c.code = o.code
), changed AS (
    UPDATE meter.meter m
       SET status = CASE WHEN j.code IS NULL THEN 'eligible' ELSE 'excluded' END,
           status_since = CASE WHEN m.status = CASE WHEN j.code IS NULL THEN 'eligible'
                                                    ELSE 'excluded' END
                               THEN m.status_since ELSE clock_timestamp() END,
           status_reason = CASE WHEN j.code IS NOT NULL THEN j.reason
                                WHEN m.status = 'excluded' THEN 'exclusion lifted'
                                ELSE 'no exclusion' END,
           exclusion_code = j.code,
           excluded_via = j.via
      FROM judged j
     WHERE m.meter_id = j.meter_id
       AND (m.status, m.exclusion_code, m.excluded_via)
           IS DISTINCT FROM (CASE WHEN j.code IS NULL THEN 'eligible' ELSE 'excluded' END,
                             j.code, j.via)
    RETURNING 1
)
SELECT count(*) FROM changed
$$;

-- Judge every meter still 'loaded' (new in the registry); returns how many changed. After a
-- bulk registration the table's statistics are stale (a fresh table looks empty to the
-- planner, which then scans it once per site): many new meters refresh them first, and are
-- judged with hash joins (index lookups per site are for the few sites a list file touches).
CREATE FUNCTION meter.judge_loaded() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    keys text[];
    nestloop text := current_setting('enable_nestloop');
    changed bigint;
BEGIN
    SELECT array_agg(DISTINCT meter.site_key(site, meter_id)) INTO keys
      FROM meter.meter WHERE status = 'loaded';
    IF keys IS NULL THEN
        RETURN 0;
    END IF;
    IF cardinality(keys) <= 10000 THEN
        RETURN meter.apply_site_rule(keys);
    END IF;
    ANALYZE meter.meter;
    PERFORM set_config('enable_nestloop', 'off', true);
    changed := meter.apply_site_rule(keys);
    PERFORM set_config('enable_nestloop', nestloop, true);
    RETURN changed;
END $$;

-- The rule follows every change of the lists, whoever makes it (a file, psql, a test).
CREATE FUNCTION meter.exclusion_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(meter_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(meter_id) INTO ids FROM old_rows;
    ELSE
        SELECT array_agg(meter_id) INTO ids
          FROM (SELECT meter_id FROM new_rows UNION SELECT meter_id FROM old_rows) u;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM meter.apply_site_rule(array_agg(DISTINCT meter.site_key(m.site, m.meter_id)))
           FROM meter.meter m WHERE m.meter_id = ANY (ids);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER exclusion_added AFTER INSERT ON meter.exclusion
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meter.exclusion_changed();
CREATE TRIGGER exclusion_removed AFTER DELETE ON meter.exclusion
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meter.exclusion_changed();
CREATE TRIGGER exclusion_updated AFTER UPDATE ON meter.exclusion
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meter.exclusion_changed();

-- A meter that moves to another site is re-judged with both sites.
CREATE FUNCTION meter.site_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM meter.apply_site_rule(ARRAY[meter.site_key(OLD.site, OLD.meter_id),
                                        meter.site_key(NEW.site, NEW.meter_id)]);
    RETURN NULL;
END $$;

CREATE TRIGGER meter_site_changed AFTER UPDATE OF site ON meter.meter
    FOR EACH ROW WHEN (OLD.site IS DISTINCT FROM NEW.site)
    EXECUTE FUNCTION meter.site_changed();

-- The activity log: one row per list file (exclusions or approvals), with start, end,
-- outcome and counts. status: running → loaded | held | failed; a 'running' row left by a
-- killed load is marked 'cleaned' by the next load of the same list.
CREATE TABLE audit.list_load (
    load_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed           text        NOT NULL,
    file_name      text        NOT NULL,
    sha256         text        NOT NULL,
    system         text,
    sequence       integer,
    method         text CHECK (method IN ('ADD/REMOVE', 'ALL', 'APPROVAL')),
    status         text        NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'loaded', 'held', 'failed', 'cleaned')),
    rows_in_file   integer,
    rows_added     integer NOT NULL DEFAULT 0,
    rows_removed   integer NOT NULL DEFAULT 0,
    rows_changed   integer NOT NULL DEFAULT 0,
    rows_unchanged integer NOT NULL DEFAULT 0,
    message        text,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz
);
-- A sequence number of a sending system's file kind is loaded once.
CREATE UNIQUE INDEX list_load_sequence ON audit.list_load (feed, system, sequence)
    WHERE status = 'loaded';

-- Why a list file was held: one row per problem (sequence gap or repeat, footer count, a bad
-- row), naming the line.
CREATE TABLE audit.list_error (
    error_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    load_id    bigint      NOT NULL REFERENCES audit.list_load (load_id) ON DELETE CASCADE,
    line_no    integer,
    problem    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Tranches: a selection of whole eligible sites, oldest eligible first, sent as one outbound
-- file to a system (sequence per system) and answered by an approval file.
CREATE TABLE meter.tranche (
    tranche_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system       text        NOT NULL,
    sequence     integer     NOT NULL,
    tranche_date date        NOT NULL,
    size_asked   integer     NOT NULL CHECK (size_asked > 0),
    meters       integer     NOT NULL,
    sites        integer     NOT NULL,
    file_key     text,
    run_id       text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (system, sequence)
);

CREATE TABLE meter.tranche_meter (
    tranche_id bigint NOT NULL,  -- meter.tranche; no foreign key: 100,000 rows per tranche
    meter_id   text   NOT NULL,
    site_key   text   NOT NULL,
    outcome    text CHECK (outcome IN ('approved', 'rejected')),
    reason     text,
    PRIMARY KEY (tranche_id, meter_id)
);
CREATE INDEX tranche_meter_meter ON meter.tranche_meter (meter_id);
