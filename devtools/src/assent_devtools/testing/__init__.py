"""Test support: one real Kafka and PostgreSQL per run, unique names, polling with a deadline."""
