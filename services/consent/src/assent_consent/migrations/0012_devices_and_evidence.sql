-- What proves a change, where an event does (the signup grant: the EmailVerified event). Issue 15.
ALTER TABLE consent_events ADD COLUMN evidence text;

-- Visitors without an account (issue 12): one row per device, its lock and last seq handed out.
CREATE TABLE devices (
    device_id  text        PRIMARY KEY,
    last_seq   bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_consent_events (
    event_id       uuid        PRIMARY KEY,
    device_id      text        NOT NULL REFERENCES devices (device_id),
    seq            bigint      NOT NULL,
    purpose        text        NOT NULL,
    granted        boolean     NOT NULL,
    policy_version int         NOT NULL,
    source         text        NOT NULL,
    gpc            boolean     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    UNIQUE (device_id, seq)
);

CREATE TABLE device_consent_state (
    device_id  text        NOT NULL,
    purpose    text        NOT NULL,
    granted    boolean     NOT NULL,
    seq        bigint      NOT NULL,
    event_id   uuid        NOT NULL REFERENCES device_consent_events (event_id),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, purpose)
);
