"""`make run`: the whole system on this machine, on real Kafka, PostgreSQL and an SMTP sink.

KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (a server URL; one database per service is created on
it) point the stack at existing servers instead of starting its own.
"""

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from assent_devtools.devstack import environments, services
from assent_devtools.devstack.errors import MissingPrerequisite
from assent_devtools.devstack.kafka_server import start_kafka
from assent_devtools.devstack.postgres_server import ensure_database, start_postgres
from assent_devtools.devstack.smtp_sink import SmtpSink


def _admin_token(state: Path) -> str:
    if os.environ.get("ASSENT_ADMIN_TOKEN"):
        return os.environ["ASSENT_ADMIN_TOKEN"]
    path = state / "admin-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _secret(state: Path, name: str) -> str:
    path = state / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _console_password_hash(state: Path) -> str:
    """The Site console's password for `make run`: kept in var/secrets, only its hash reaches the Site."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(_secret(state, "site-admin-password"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="assent-devstack", description=__doc__)
    parser.add_argument("--state", type=Path, default=Path("var"), help="folder for data and logs (kept between runs)")
    parser.add_argument("--kafka-port", type=int, default=int(os.environ.get("ASSENT_KAFKA_PORT", 9092)))
    parser.add_argument("--postgres-port", type=int, default=int(os.environ.get("ASSENT_POSTGRES_PORT", 55432)))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("ASSENT_SMTP_PORT", 2525)))
    args = parser.parse_args()
    state: Path = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    stoppers = []
    processes = []
    stopping = False

    def on_signal(*_: object) -> None:
        # Ctrl-C reaches us twice (from the terminal and forwarded by `uv run`): a second one
        # must not cut the shutdown short and leave servers running.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    # Set both: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not kafka:
            print("starting Apache Kafka (KRaft, single node)...", flush=True)
            server = start_kafka(state / "kafka", args.kafka_port, args.kafka_port + 1, cache=state / "cache")
            stoppers.append(server.stop)
            kafka = server.bootstrap
        admin_url = os.environ.get("DATABASE_URL")
        if not admin_url:
            print("starting PostgreSQL...", flush=True)
            pg = start_postgres(state / "postgres", args.postgres_port)
            stoppers.append(pg.stop)
            admin_url = pg.admin_url
        mail = state / "mail"
        sink = SmtpSink(mail, args.smtp_port).start()
        stoppers.append(sink.stop)
        token = _admin_token(state)
        urls = {spec.name: f"http://127.0.0.1:{spec.port}" for spec in services.ALL}
        envs = environments.build(
            environment="development", kafka=kafka, urls=urls, smtp_port=args.smtp_port, admin_token=token,
            databases={spec.name: asyncio.run(ensure_database(admin_url, spec.database)) for spec in services.SERVICES},
            settings={
                "ASSENT_SIGNING_SECRET": _secret(state, "signing-secret"),
                "ASSENT_BOUNCE_SECRET": _secret(state, "bounce-secret"),  # the mailer's: a relay signs its reports
                "ASSENT_SIGNING_KEY_SECRET": _secret(state, "signing-key-secret"),
                "ASSENT_DATA_KEY_SECRET": _secret(state, "data-key-secret"),
            },
            site={"ASSENT_SESSION_SECRET": _secret(state, "site-session"),
                  "ASSENT_SITE_ADMIN_PASSWORD_HASH": _console_password_hash(state)},
        )
        for spec in services.SERVICES:
            log = state / "logs" / f"{spec.name}.log"
            processes.append((spec, services.start_service(spec, spec.port, envs[spec.name], log), log))
        for spec, process, log in processes:
            services.wait_ready(urls[spec.name], process, log)
        # The Site starts once the services it calls answer.
        log = state / "logs" / "site.log"
        site = services.SITE
        processes.append((site, services.start_service(site, site.port, envs[site.name], log), log))
        services.wait_ready(urls[site.name], processes[-1][1], log)
        _print_banner(kafka, admin_url, mail, token, state)
        while all(p.poll() is None for _, p, _ in processes):
            time.sleep(1)
        failed = [spec.name for spec, p, _ in processes if p.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited; see {state / 'logs'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stopping = True
        print("\nstopping...", flush=True)
        return 0
    except MissingPrerequisite as exc:
        print(f"assent: {exc}", file=sys.stderr)
        return 2
    finally:
        services.stop_all([p for _, p, _ in processes])
        for stop in reversed(stoppers):
            stop()
        if stopping:
            print("stopped cleanly; data kept in", state, flush=True)


def _print_banner(kafka: str, admin_url: str, mail: Path, token: str, state: Path) -> None:
    print("\nAssent is running:", flush=True)
    print(f"  site       http://127.0.0.1:{services.SITE.port}/   (console: /admin, password in "
          f"{state / 'secrets' / 'site-admin-password'})")
    for spec in services.SERVICES:
        print(f"  {spec.name:<10} http://127.0.0.1:{spec.port}   (docs: /docs)")
    print(f"  kafka      {kafka}")
    print(f"  postgres   {admin_url.rsplit('/', 1)[0]}/assent_<service>")
    print(f"  mail sink  {mail}  (one .eml file per message; a relay signs bounce reports with "
          f"{state / 'secrets' / 'bounce-secret'})")
    print(f"  admin token (development): {token}")
    print(f"  logs       {state / 'logs'}")
    print("\nTry: curl -s -X POST http://127.0.0.1:8101/v1/users -H 'content-type: application/json' \\")
    print("       -d '{\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}'")
    print("Ctrl-C stops everything; data is kept for the next run.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
