"""Assent telemetry service."""
