-- Suppression hashes carry the id of the HMAC key that made them, so the key can rotate without
-- un-suppressing anyone (lookups try every live key); rows made before this were keyed with the
-- unsubscribe secret and are marked `legacy`. `seen_at` drives retention.
ALTER TABLE suppressions ADD COLUMN key_id text NOT NULL DEFAULT 'legacy';
ALTER TABLE suppressions ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE suppressions ALTER COLUMN key_id DROP DEFAULT;
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
ALTER TABLE suppressions ADD PRIMARY KEY (key_id, email_hash);
CREATE INDEX suppressions_seen_at ON suppressions (seen_at);
