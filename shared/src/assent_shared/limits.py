"""A ceiling on request bodies at every service: a body over it gets 413 problem+json before any
route reads it, whether it declares its length or streams without one."""

import json

from assent_shared.problems import MEDIA_TYPE

_DRAIN_BYTES = 8 * 1024 * 1024


class BodyLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._drain(receive, True)
            await self._refuse(send)
            return
        # Read the body here, bounded, then hand it on: a route never sees more than the limit.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._drain(receive, more and message.get("more_body", False))
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, delivered = b"".join(chunks), False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would send

        await self.app(scope, replay, send)

    async def _drain(self, receive, more: bool) -> None:
        """Read (and drop) what the client is still sending, up to a bound, so that it reads our 413
        instead of a reset connection; a client that sends more than that is cut off."""
        dropped = 0
        while more and dropped < _DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            dropped += len(message.get("body", b""))
            more = message.get("more_body", False)

    async def _refuse(self, send) -> None:
        body = json.dumps({"type": "about:blank", "title": "Body too large", "status": 413,
                           "detail": f"At most {self.max_bytes} bytes."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
