class MissingPrerequisite(RuntimeError):
    """Something the local stack needs is not installed; the message says what to install."""
