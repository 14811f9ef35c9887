"""Fides' webserver on loopback, run by the peer's own Python: `fides webserver` (2.78.2) binds 0.0.0.0
with no option to change it, and a benchmark opens nothing beyond 127.0.0.1. Otherwise the same call."""

import sys

import uvicorn
from fides.api.main import app

uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")).run()
