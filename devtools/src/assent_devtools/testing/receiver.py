"""A local processor for tests: receives webhooks, checks their signature, can fail on purpose."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def signature_valid(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


class ProcessorReceiver:
    def __init__(self, secret: str, fail_first: int = 0, hold_first: float = 0.0,
                 release: threading.Event | None = None) -> None:
        """`hold_first`: the first request is answered that many seconds late; with `release`, once
        `release` is set (a test decides when the sender hears back)."""
        self.secret = secret
        self.fail_first = fail_first
        self.hold_first = hold_first
        self.release = release
        self.attempts: list[dict] = []
        self.accepted: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                payload = json.loads(body)
                payload["_signature_valid"] = signature_valid(receiver.secret, self.headers.get("Assent-Signature", ""), body)
                receiver.attempts.append(payload)
                if len(receiver.attempts) == 1 and (receiver.hold_first or receiver.release):
                    # Takes the data, then answers late: the sender may die before it hears back.
                    receiver.accepted.append(payload)
                    if receiver.release:
                        receiver.release.wait(60)
                    else:
                        time.sleep(receiver.hold_first)
                    self.send_response(204)
                elif len(receiver.attempts) <= receiver.fail_first:
                    self.send_response(503)
                else:
                    receiver.accepted.append(payload)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def unique_deliveries(self, event: str) -> set[str]:
        """What the processor keeps after dropping repeats by delivery id."""
        return {p["delivery_id"] for p in self.accepted if p["event"] == event}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
