"""Errors that mean a dependency is down for now (the network, PostgreSQL restarting), not that the
input is at fault: a consumer retries the record, an API answers 503, nothing is dead-lettered."""

import asyncpg

TRANSIENT = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,  # a server restart ends every session
    asyncpg.CrashShutdownError,
)
