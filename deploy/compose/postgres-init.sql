-- Run once by the postgres image's entrypoint, on an empty data directory only.
-- One database per service; the services apply their own migrations at start.
CREATE DATABASE assent_identity OWNER assent;
CREATE DATABASE assent_consent OWNER assent;
CREATE DATABASE assent_mailer OWNER assent;
CREATE DATABASE assent_policy OWNER assent;
CREATE DATABASE assent_telemetry OWNER assent;
CREATE DATABASE assent_support OWNER assent;
