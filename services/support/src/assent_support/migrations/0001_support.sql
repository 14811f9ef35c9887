-- One row per inquiry (a thread). `email` only when the person volunteered it; `user_id` only when
-- signed in (their address stays with identity and the mailer). Erasure deletes the row.
CREATE TABLE inquiries (
    inquiry_id  uuid        PRIMARY KEY,
    reference   text        NOT NULL UNIQUE,
    category    text        NOT NULL CHECK (category IN ('question', 'support_request', 'privacy_question', 'feedback')),
    user_id     uuid,
    email       text,
    want_reply  boolean     NOT NULL,
    locale      text        NOT NULL,
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed')),
    received_at timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inquiries_recent ON inquiries (received_at DESC, inquiry_id);
CREATE INDEX inquiries_user ON inquiries (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX inquiries_email ON inquiries (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE inquiry_messages (
    message_id uuid        PRIMARY KEY,
    inquiry_id uuid        NOT NULL REFERENCES inquiries (inquiry_id) ON DELETE CASCADE,
    author     text        NOT NULL CHECK (author IN ('person', 'staff')),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inquiry_messages_thread ON inquiry_messages (inquiry_id, created_at);

-- Answer links of reply mails: only a hash of each token is kept.
CREATE TABLE reply_tokens (
    token_hash bytea       PRIMARY KEY,
    inquiry_id uuid        NOT NULL REFERENCES inquiries (inquiry_id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);

-- The product team's view: how many inquiries of each topic arrived per day. Nothing about anyone,
-- and it outlives the erasure of the inquiries it counts.
CREATE TABLE topic_counts (
    day      date NOT NULL,
    category text NOT NULL,
    count    int  NOT NULL,
    PRIMARY KEY (day, category)
);

-- Per client (a keyed hash of its address) and fixed window: how many messages it sent.
CREATE TABLE rate_limits (
    client_key   text        NOT NULL,
    window_start timestamptz NOT NULL,
    count        int         NOT NULL,
    PRIMARY KEY (client_key, window_start)
);
CREATE INDEX rate_limits_age ON rate_limits (window_start);

-- Erased users: a token issued before the erasure must not start a new thread.
CREATE TABLE erased_users (
    user_id   uuid        PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
