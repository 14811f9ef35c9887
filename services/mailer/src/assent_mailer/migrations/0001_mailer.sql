-- The subject's email as identity announced it; null once erased.
CREATE TABLE contacts (
    subject_id uuid        PRIMARY KEY,
    email      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz
);

-- The newest consent event applied per key, by seq (the consent gate, rule 2).
CREATE TABLE consent_view (
    subject_id uuid    NOT NULL,
    purpose    text    NOT NULL,
    recipient  text    NOT NULL,
    granted    boolean NOT NULL,
    seq        bigint  NOT NULL,
    event_id   text    NOT NULL,
    PRIMARY KEY (subject_id, purpose, recipient)
);

CREATE TABLE processors (
    processor_id   text        PRIMARY KEY,
    name           text        NOT NULL,
    endpoint_url   text        NOT NULL,
    purposes       text[]      NOT NULL,
    signing_secret text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Every email and webhook: what, to whom, why (consent_event_id), and what became of it.
CREATE TABLE deliveries (
    delivery_id      uuid        PRIMARY KEY,
    dedupe_key       text        NOT NULL UNIQUE,
    subject_id       uuid        NOT NULL,
    kind             text        NOT NULL,
    channel          text        NOT NULL,
    recipient        text        NOT NULL,
    purpose          text,
    consent_event_id text,
    status           text        NOT NULL DEFAULT 'pending',
    attempts         int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    content          jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_subject ON deliveries (subject_id, created_at);
