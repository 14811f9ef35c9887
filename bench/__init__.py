"""`make bench`: the running system's real work beside the ceilings of its parts, measured in one run."""
