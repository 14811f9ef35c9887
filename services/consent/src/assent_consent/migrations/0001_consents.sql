-- One row per subject: the lock that serializes a subject's changes and the last seq handed out.
CREATE TABLE subjects (
    subject_id uuid   PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0
);

-- The ordered history; the current state is derived from it.
CREATE TABLE consent_events (
    event_id       uuid        PRIMARY KEY,
    subject_id     uuid        NOT NULL REFERENCES subjects (subject_id),
    seq            bigint      NOT NULL,
    purpose        text        NOT NULL,
    recipient      text        NOT NULL,
    granted        boolean     NOT NULL,
    policy_version int         NOT NULL,
    source         text        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    UNIQUE (subject_id, seq)
);

CREATE TABLE consent_state (
    subject_id uuid        NOT NULL,
    purpose    text        NOT NULL,
    recipient  text        NOT NULL,
    granted    boolean     NOT NULL,
    seq        bigint      NOT NULL,
    event_id   uuid        NOT NULL REFERENCES consent_events (event_id),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (subject_id, purpose, recipient)
);

-- Processors the mailer announced; a consent may name one only after it was seen.
CREATE TABLE recipients (
    processor_id text        PRIMARY KEY,
    name         text        NOT NULL,
    purposes     text[]      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policy_in_force (
    policy_id text PRIMARY KEY,
    version   int  NOT NULL
);
