-- Private signing keys are stored sealed (AES-GCM under a configured secret), not as plain PEM.
ALTER TABLE signing_keys RENAME COLUMN private_pem TO private_key_sealed;
-- Keys stored in the clear before this migration are dropped; a new sealed key is made on use.
DELETE FROM signing_keys WHERE private_key_sealed LIKE '-----BEGIN%';
