-- Failed logins per account (keyed hash of the email) and per client, for throttling.
CREATE TABLE login_failures (
    throttle_key text        PRIMARY KEY,
    failures     int         NOT NULL,
    first_at     timestamptz NOT NULL,
    locked_until timestamptz
);

-- What remains of an erased account: its id, so the erasure can be shown and never undone.
CREATE TABLE erasures (
    user_id      uuid        PRIMARY KEY,
    requested_at timestamptz NOT NULL
);

CREATE TABLE erasure_confirmations (
    user_id      uuid        NOT NULL REFERENCES erasures (user_id),
    service      text        NOT NULL,
    confirmed_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, service)
);
