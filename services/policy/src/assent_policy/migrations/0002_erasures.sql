-- Erased users: no acceptance is recorded for them again, whatever arrives late.
CREATE TABLE erased_users (
    user_id   uuid        PRIMARY KEY,
    erased_at timestamptz NOT NULL
);
