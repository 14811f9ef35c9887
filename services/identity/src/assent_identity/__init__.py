"""Assent identity service."""
