-- Published versions are immutable: no statement of the service updates a version's content.
-- in_force_since is set once, in the transaction that enqueues the version's PolicyUpdated.
CREATE TABLE policy_versions (
    policy_id      text        NOT NULL,
    version        int         NOT NULL CHECK (version >= 1),
    title          text        NOT NULL,
    summary        text        NOT NULL,
    body           text        NOT NULL,
    material       boolean     NOT NULL,
    data_use       jsonb       NOT NULL DEFAULT '[]',
    published_at   timestamptz NOT NULL DEFAULT now(),
    effective_at   timestamptz NOT NULL,
    in_force_since timestamptz,
    PRIMARY KEY (policy_id, version)
);
CREATE INDEX policy_versions_pending ON policy_versions (effective_at) WHERE in_force_since IS NULL;

-- One row per way a user accepted a version; erasure deletes a user's rows.
CREATE TABLE acceptances (
    user_id     uuid        NOT NULL,
    policy_id   text        NOT NULL,
    version     int         NOT NULL,
    how         text        NOT NULL CHECK (how IN ('signup', 'continued_use', 'explicit')),
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, policy_id, version, how)
);
