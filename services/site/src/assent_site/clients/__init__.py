"""One client per upstream service; each speaks only that service's public HTTP API."""
