-- Email verification and password reset (issue 12). Numbered 12 to stay clear of parallel work.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
-- The signup's newsletter opt-in waits here until the address is verified (issue 15).
ALTER TABLE users ADD COLUMN newsletter_opt_in_pending boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN locale text;

-- Single-use mail tokens: `<selector>.<verifier>`; only a SHA-256 of the verifier is kept.
CREATE TABLE mail_tokens (
    selector      text        PRIMARY KEY,
    verifier_hash bytea       NOT NULL,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
CREATE INDEX mail_tokens_user ON mail_tokens (user_id, purpose, created_at);

-- Reset requests per client (a keyed hash of the address), for throttling; pruned after an hour.
CREATE TABLE reset_requests (
    client_key   text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reset_requests_client ON reset_requests (client_key, requested_at);
