"""Real servers for a machine without Docker: Apache Kafka from Maven Central, PostgreSQL from PyPI, an SMTP sink."""
