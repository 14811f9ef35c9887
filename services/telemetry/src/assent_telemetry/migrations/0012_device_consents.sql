-- What the consent service says each visitor's browser allowed (DeviceConsentGranted/Revoked), by the
-- newest seq. Only a SHA-256 of the device id is kept: enough to look a hit's device up, nothing more.
CREATE TABLE device_consents (
    device_hash text        NOT NULL,
    purpose     text        NOT NULL,
    granted     boolean     NOT NULL,
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_hash, purpose)
);
