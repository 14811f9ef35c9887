"""Assent policy service."""
