-- Addresses that must never get mail again (hard bounce, complaint), kept only as a keyed hash
-- so that suppression survives the erasure of the address itself.
CREATE TABLE suppressions (
    email_hash bytea       PRIMARY KEY,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
