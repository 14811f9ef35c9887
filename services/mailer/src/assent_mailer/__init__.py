"""Assent mailer service."""
