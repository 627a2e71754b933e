"""Amends: wires settings → store → domain → Slack app → routes, on one aiohttp server.

    python app.py            start the bot on $PORT (default 3978)
"""

import logging
import sys

from aiohttp import ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.clock import Clock, SystemClock
from bot.recovery import Recovery
from bot.settings import Settings
from bot.store import Store, open_store
from handlers.slack import SlackApp, build_slack_app

log = logging.getLogger("amends")

RECOVERY = web.AppKey("recovery", Recovery)
HTTP = web.AppKey("http", ClientSession)
SLACK = web.AppKey("slack", SlackApp)

MAX_BODY = 1024 * 1024  # Slack's payloads are a few kB; anything near this is not Slack


def create_app(settings: Settings, *, store: Store | None = None, clock: Clock | None = None) -> web.Application:
    """The aiohttp application with every route; nothing happens at import time."""
    app = web.Application(client_max_size=MAX_BODY)
    store = store or open_store(settings.db)
    recovery = Recovery(store=store, clock=clock or SystemClock(), currency=settings.currency, tz=settings.zone)
    app[RECOVERY] = recovery
    missing = settings.missing_for_slack()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "slack": not missing})

    async def slack_events(request: web.Request) -> web.Response:
        if missing:
            return web.json_response({"error": f"Slack is not configured: set {', '.join(missing)}"}, status=503)
        bolt = request.app[SLACK].bolt
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def start(app: web.Application) -> None:
        await store.open()
        if missing:
            log.warning("Slack is off: set %s (see README). /healthz still answers.", " and ".join(missing))
            return
        app[HTTP] = ClientSession()
        app[SLACK] = build_slack_app(settings=settings, recovery=recovery, session=app[HTTP])

    async def stop(app: web.Application) -> None:
        if SLACK in app:
            await app[SLACK].background.drain()
        if HTTP in app:
            await app[HTTP].close()
        await store.close()

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/slack/events", slack_events)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ValueError as problem:
        print(f"Amends can't start: {problem}", file=sys.stderr)
        return 2
    log.info("starting with %s", settings)
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                print=lambda _: log.info("Amends is listening on http://%s:%d", settings.host, settings.port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
