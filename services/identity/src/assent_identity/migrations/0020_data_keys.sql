-- The key owner: one data key per subject, wrapped under ASSENT_DATA_KEY_SECRET. Deleting the row
-- is the erasure of every personal field ever sealed under it (crypto-shredding).
CREATE TABLE data_keys (
    subject_id    uuid        PRIMARY KEY,
    key_id        uuid        NOT NULL UNIQUE,
    wrapped_key   bytea       NOT NULL,
    owner_service text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A subject whose key was deleted never gets a new one: nothing more is sealed for them.
CREATE TABLE data_key_erasures (
    subject_id uuid        PRIMARY KEY,
    erased_by  text        NOT NULL,
    erased_at  timestamptz NOT NULL DEFAULT now()
);

-- Who touched which subject's key, when, and with what outcome; never a key or a personal value.
CREATE TABLE data_key_audit (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    service    text        NOT NULL,
    subject_id uuid        NOT NULL,
    key_id     uuid,
    action     text        NOT NULL CHECK (action IN ('create', 'read', 'erase')),
    outcome    text        NOT NULL CHECK (outcome IN ('ok', 'erased', 'unknown', 'refused'))
);
CREATE INDEX data_key_audit_subject ON data_key_audit (subject_id, at);
CREATE INDEX data_key_audit_at ON data_key_audit (at);
