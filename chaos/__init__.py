"""The fault suite (`make chaos`)."""
