-- The secret of each UTC day's cookieless visitor hash. Shared by replicas through this table and
-- deleted once the day can take no more hits, so that no hash can be recomputed or linked across days.
CREATE TABLE daily_salts (
    day        date        PRIMARY KEY,
    salt       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Page views per site, UTC day and hour, dimension and value. No address, no user id: only counts.
CREATE TABLE hit_rollups (
    site_id   text     NOT NULL,
    day       date     NOT NULL,
    hour      smallint NOT NULL,
    dimension text     NOT NULL,
    value     text     NOT NULL,
    hits      bigint   NOT NULL,
    PRIMARY KEY (site_id, day, dimension, value, hour)
);

-- Distinct visitors per site, day, dimension and value: unique counts stay exact and k can be checked.
CREATE TABLE visitor_days (
    site_id      text NOT NULL,
    day          date NOT NULL,
    dimension    text NOT NULL,
    value        text NOT NULL,
    visitor_hash text NOT NULL,
    PRIMARY KEY (site_id, day, dimension, value, visitor_hash)
);

-- Lets the ids of hits be pruned once the topic itself no longer holds them.
CREATE INDEX IF NOT EXISTS telemetry_inbox_applied_at ON inbox (topic, applied_at);
