"""A Socket Mode server double: the websocket Slack's apps.connections.open URL points at.

It listens on 127.0.0.1 (port 0), greets each connection with Slack's `hello`, sends envelopes the
way Slack does ({"envelope_id", "type", "accepts_response_payload", "payload"}), and records each
ack ({"envelope_id"[, "payload"]}) so a test can await it with a deadline.
"""

import asyncio
import itertools
import json

from aiohttp import WSMsgType, web

from tests.doubles import serve_on_loopback


class SocketModeDouble:
    def __init__(self):
        self.connections: list[web.WebSocketResponse] = []
        self.acks: dict[str, asyncio.Future] = {}
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()  # a connection ended (the app closed its websocket)
        self.problems: list[str] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> "SocketModeDouble":
        app = web.Application()
        app.router.add_get("/link", self._socket)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        for ws in list(self.connections):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link?ticket=test"

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.connections),
                            "debug_info": {"host": "applink-test", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": "A0KRD7HC3"}})
        self.connected.set()
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            ack = json.loads(message.data)
            future = self.acks.get(ack.get("envelope_id", ""))
            if future is None or future.done():
                self.problems.append(f"an ack for no envelope we are waiting on: {ack}")
                continue
            future.set_result(ack)
        self.connections.remove(ws)
        self.disconnected.set()
        return ws

    async def send(self, kind: str, payload: dict, *, accepts_response_payload: bool,
                   timeout: float = 5.0, **extra) -> dict:
        """Send one envelope over the newest connection; return the ack the app sent back for it."""
        envelope_id = f"envelope-{next(self._ids)}"
        self.acks[envelope_id] = asyncio.get_running_loop().create_future()
        await self.connections[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                              "accepts_response_payload": accepts_response_payload, **extra})
        try:
            return await asyncio.wait_for(self.acks[envelope_id], timeout)
        except TimeoutError:
            raise AssertionError(f"no ack for {kind} envelope {envelope_id} within {timeout}s") from None
