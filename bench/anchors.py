"""The two anchors the benchmark measures Amends against, each run as its own process.

    python bench/anchors.py floor PORT                 raw aiohttp: POST /slack/events → 200
    python bench/anchors.py bolt PORT SLACK_API_URL    bare Bolt AsyncApp: /recover acks, then one chat.postMessage

Both also answer GET /healthz and print "listening" once they accept connections.
"""

import os
import sys

from aiohttp import ClientSession, web

SIGNING_SECRET = os.environ.get("SLACK_SIGNING_SECRET", "bench-signing-secret")
BOT_TOKEN = os.environ.get("SLACK_BOT_TOKEN", "xoxb-test-token")


def floor_app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="")
    app = web.Application()
    app.router.add_post("/slack/events", ok)
    app.router.add_get("/healthz", ok)
    return app


def bolt_app(api_url: str) -> web.Application:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    app = web.Application()

    async def start(app: web.Application) -> None:
        session = ClientSession()
        app["session"] = session
        bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url, session=session),
                        signing_secret=SIGNING_SECRET)

        @bolt.command("/recover")
        async def recover(ack, command, client):
            await ack()
            await client.chat_postMessage(channel=command["channel_id"], text=command["text"])
        app["bolt"] = bolt

    async def stop(app: web.Application) -> None:
        await app["session"].close()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await request.app["bolt"].async_dispatch(await to_bolt_request(request)))

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="")

    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    app = floor_app() if kind == "floor" else bolt_app(sys.argv[3])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None,
                print=lambda _: print("listening", flush=True))
