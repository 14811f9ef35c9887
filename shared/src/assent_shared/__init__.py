"""Assent's shared mechanisms. Business rules live in the services, never here."""
