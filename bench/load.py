"""Load generator, run as its own process: `python -m bench.load SPEC.json`.

Targets 127.0.0.1 only (rawhttp refuses anything else), stops by itself after `count` requests or
`seconds`, whichever comes first, and writes its result as JSON to the spec's `out` path.
Closed loop (`concurrency` workers back to back) or open loop (`rate` per second, at most
`max_inflight` outstanding; a request that would exceed it is counted as skipped).
"""

import asyncio
import json
import sys
import time
from pathlib import Path

from bench.rawhttp import Conn

PASSWORD = "correct horse battery"
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)
JSON = {"content-type": "application/json"}
STALE = 2.0  # seconds idle after which a pooled connection is dropped rather than reused
GRACE = 30.0  # a request still running this long after the deadline is abandoned


class Workload:
    """Builds request `i` and turns its answer into a record; one instance per generator process."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.kind = spec["kind"]
        self.weight = spec.get("batch", 1) if self.kind in ("collect", "empty") else 1
        self.granted: dict[int, bool] = dict(enumerate(spec.get("initial", [])))  # consent state per slot
        self.locks: dict[str, asyncio.Lock] = {}
        self.first: dict[int, bytes] = {}  # a two-request operation's first answer, for its record

    def request(self, i: int) -> tuple[str, str, bytes, dict[str, str]]:
        s, kind = self.spec, self.kind
        if kind in ("collect", "empty"):
            hits = [{"site_id": s.get("site", "demo"), "url": f"https://demo.example/p{(i + n) % 50}"}
                    for n in range(s.get("batch", 1))]
            body = json.dumps(hits if len(hits) > 1 else hits[0]).encode()
            headers = {**JSON, "User-Agent": AGENTS[i % 3], "X-Forwarded-For": f"198.51.{i % 250}.{i % 200}"}
            return "POST", "/v1/collect" if kind == "collect" else "/empty", body, headers
        if kind == "register":
            body = {"email": f"{s['prefix']}{i}@example.com", "password": PASSWORD}
            return "POST", "/v1/users", json.dumps(body).encode(), JSON
        if kind == "fides_record":  # the peer's record, first half: a consent request for a new identity
            body = {"identity": {"email": f"{s['prefix']}{i}@example.com"}}
            return "POST", "/api/v1/consent-request", json.dumps(body).encode(), JSON
        if kind == "fides_revoke":
            return _fides_preferences(s["ids"][i % len(s["ids"])], False)
        if kind == "login":
            body = {"email": s["users"][i % len(s["users"])], "password": PASSWORD}
            return "POST", "/v1/sessions", json.dumps(body).encode(), JSON
        subject, token, purpose, recipient = s["slots"][i % len(s["slots"])]
        granted = not self.granted.get(i % len(s["slots"]), False)
        return ("PUT", f"/v1/subjects/{subject}/consents/{purpose}/{recipient}",
                json.dumps({"granted": granted}).encode(), {**JSON, "Authorization": f"Bearer {token}"})

    def follow_up(self, answer: bytes) -> tuple[str, str, bytes, dict[str, str]] | None:
        """The second request of a two-request operation, built from the first one's answer."""
        if self.kind == "fides_record":
            return _fides_preferences(json.loads(answer)["consent_request_id"], True)
        return None

    def lock_for(self, i: int) -> asyncio.Lock | None:
        """Consent changes of one subject go one at a time, so each toggle is a real change."""
        if self.kind != "consent":
            return None
        subject = self.spec["slots"][i % len(self.spec["slots"])][0]
        return self.locks.setdefault(subject, asyncio.Lock())

    def record(self, i: int, body: bytes, done: float) -> list | None:
        if self.kind == "register":
            return [f"{self.spec['prefix']}{i}@example.com", done, json.loads(body)["id"]]
        if self.kind == "login" and i < len(self.spec["users"]):
            return [self.spec["users"][i], json.loads(body)["access_token"]]
        if self.kind == "fides_record":
            return [json.loads(self.first.pop(i))["consent_request_id"]]
        if self.kind == "consent":
            answer = json.loads(body)
            self.granted[i % len(self.spec["slots"])] = answer["granted"]
            return [answer["event_id"], done] if answer.get("event_id") else None
        return None


def _fides_preferences(request_id: str, opt_in: bool) -> tuple[str, str, bytes, dict[str, str]]:
    body = {"consent": [{"data_use": "marketing.advertising", "opt_in": opt_in}]}
    return "PATCH", f"/api/v1/consent-request/{request_id}/preferences", json.dumps(body).encode(), JSON


class Generator:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.work = Workload(spec)
        self.targets = spec["targets"]
        self.idle: dict[str, list[Conn]] = {t: [] for t in self.targets}
        self.ok = self.errors = self.skipped = self.sent = self.done_weight = 0
        self.error_samples: list[str] = []
        self.records: list = []
        self.progress: list[tuple[float, int]] = []
        self.latencies: list[float] = []
        self.deadline = 0.0

    async def one(self, i: int) -> None:
        target = self.targets[i % len(self.targets)]
        lock = self.work.lock_for(i)
        if lock is not None:
            await lock.acquire()
        conn = self._conn(target)
        try:
            method, path, body, headers = self.work.request(i)
            self.sent += 1
            begun = time.time()
            status, answer = await conn.request(method, path, body, headers)
            if status < 400 and status != 0 and (then := self.work.follow_up(answer)) is not None:
                self.work.first[i] = answer
                status, answer = await conn.request(*then)
            done = time.time()
            if status >= 400 or status == 0:
                self._error(f"HTTP {status}: {answer[:200]!r}")
            else:
                self.ok += 1
                self.done_weight += self.work.weight
                self.latencies.append(done - begun)
                self.progress.append((done, self.done_weight))
                if (rec := self.work.record(i, answer, done)) is not None:
                    self.records.append(rec)
            conn.idle_since = time.monotonic()
            self.idle[target].append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._error(type(exc).__name__)
        finally:
            if lock is not None:
                lock.release()

    def _conn(self, target: str) -> Conn:
        """An idle keep-alive connection, unless the server may have closed it (uvicorn: after 5 s idle)."""
        while self.idle[target]:
            conn = self.idle[target].pop()
            if time.monotonic() - conn.idle_since < STALE:
                return conn
            conn.close()
        return Conn(target)

    def _error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)

    async def closed(self, concurrency: int, count: int | None) -> None:
        counter = iter(range(count if count is not None else 10**12))

        async def worker() -> None:
            for i in counter:
                if time.monotonic() >= self.deadline:
                    return
                await self.one(i)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def open(self, rate: float, max_inflight: int, count: int | None) -> None:
        start, inflight = time.monotonic(), set()
        i = 0
        while (count is None or i < count) and (at := start + i / rate) < self.deadline:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if len(inflight) >= max_inflight:
                self.skipped += 1
            else:
                task = asyncio.create_task(self.one(i))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            i += 1
        if inflight:
            await asyncio.wait(inflight, timeout=GRACE)

    async def run(self) -> dict:
        s = self.spec
        self.deadline = time.monotonic() + s["seconds"]
        started = time.time()
        run = (self.open(s["rate"], s.get("max_inflight", 256), s.get("count")) if "rate" in s
               else self.closed(s["concurrency"], s.get("count")))
        try:
            await asyncio.wait_for(run, s["seconds"] + GRACE)
        except TimeoutError:
            self._error("generator deadline")
        finished = time.time()
        last = self.progress[-1][0] if self.progress else finished
        return {"ok": self.ok, "errors": self.errors, "error_samples": self.error_samples, "sent": self.sent,
                "skipped": self.skipped, "weight": self.done_weight, "started": started, "finished": finished,
                "last_ok": last, "records": self.records,
                "progress": self.progress if s.get("keep_progress") else [],
                "latencies": self.latencies if s.get("keep_latencies") else [],
                "final": [self.work.granted.get(j, False) for j in range(len(s.get("slots", [])))]}


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    result = run(Generator(spec).run())
    Path(spec["out"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
