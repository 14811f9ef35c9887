CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL UNIQUE,
    password_hash text        NOT NULL,
    display_name  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE sessions (
    id                 uuid        PRIMARY KEY,
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_token_hash bytea       NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Ed25519 keys that sign access tokens; the newest signs, older ones stay published until tokens expire.
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    private_pem text        NOT NULL,
    public_jwk  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

-- The privacy-policy version in force, learned from PolicyUpdated, stamped on each signup.
CREATE TABLE policy_in_force (
    policy_id    text        PRIMARY KEY,
    version      int         NOT NULL,
    effective_at timestamptz NOT NULL
);
