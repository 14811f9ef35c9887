"""Assent consent service."""
