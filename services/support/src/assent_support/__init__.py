"""Assent support service."""
