"""Amends: wires settings → store → domain → Slack app + Teams adapter → routes, on one aiohttp server.

    python app.py            start the bot on $PORT (default 3978)
    python app.py doctor     check the configuration, say what is wrong and how to fix it (exit 0: all well)
"""

import asyncio
import gc
import logging
import sys

from typing import TYPE_CHECKING

from aiohttp import ClientSession, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.clock import Clock, SystemClock
from bot.errors import StoreUnavailable
from bot.followups import NUDGE, REMINDER, FollowUpSender
from bot.outbox import CLOSED, AfterClose, Deferred
from bot.recovery import Recovery
from bot.settings import Settings
from bot.store import Store, open_store
from handlers import after_close
from handlers.csat import receive as csat_receive
from handlers.slack import SlackApp, build_slack_app
from handlers.slack import publish as slack_publish
from handlers.slack.edge import dispatch as dispatch_slack
from bot import digest as digests
from bot import retention
from handlers import digest as digest_glue
from handlers import export as export_links
from handlers.slack import digest as slack_digest
from handlers.slack.followups import SlackReach

if TYPE_CHECKING:
    from botframework.connector.auth import BotFrameworkAuthentication

log = logging.getLogger("amends")

RECOVERY = web.AppKey("recovery", Recovery)
HTTP = web.AppKey("http", ClientSession)
SLACK = web.AppKey("slack", SlackApp)
SOCKET = web.AppKey("socket", object)
SCHEDULES = web.AppKey("schedules", asyncio.Task)  # handlers.slack.socket_mode.SocketMode, loaded only in Socket Mode
LOOPBACK = ("127.0.0.1", "::1")

SCHEDULES_RETRY = (1.0, 60.0)  # first and longest wait between tries to owe the schedules with the database down
MAX_BODY = 1024 * 1024  # Slack's payloads are a few kB; anything near this is not Slack


def create_app(settings: Settings, *, store: Store | None = None, clock: Clock | None = None,
               teams_auth: "BotFrameworkAuthentication | None" = None) -> web.Application:
    """The aiohttp application with every route; nothing happens at import time.
    `teams_auth` replaces Bot Framework authentication built from settings (tests: a local token issuer)."""
    app = web.Application(client_max_size=MAX_BODY)
    store = store or open_store(settings.db, pool_size=settings.db_pool_size)
    recovery = Recovery(store=store, clock=clock or SystemClock(), currency=settings.currency, tz=settings.zone)
    app[RECOVERY] = recovery
    teams = {}  # the Teams glue, built on the first /api/messages request
    missing = settings.missing_for_slack()

    async def healthz(request: web.Request) -> web.Response:
        answer = {"ok": True, "slack": not missing}
        if SOCKET in request.app:
            answer["socket_mode"] = request.app[SOCKET].connected.is_set()
        return web.json_response(answer)

    async def slack_events(request: web.Request) -> web.Response:
        if missing:
            return web.json_response({"error": f"Slack is not configured: set {', '.join(missing)}"}, status=503)
        if not settings.slack_signing_secret:  # Socket Mode alone: nothing could check a signature here
            return web.json_response({"error": "Slack uses Socket Mode here; set SLACK_SIGNING_SECRET to also "
                                               "accept requests over HTTP"}, status=503)
        return await dispatch_slack(request.app[SLACK].bolt, request)  # malformed → 400, never 500

    async def slack_install(request: web.Request) -> web.Response:
        """GET /slack/install → Slack's consent page; GET /slack/oauth_redirect ← Slack, with the code."""
        oauth = request.app[SLACK].oauth if SLACK in request.app else None
        if oauth is None:
            raise web.HTTPNotFound(text="Installing in many workspaces is off: set SLACK_CLIENT_ID, "
                                        "SLACK_CLIENT_SECRET and AMENDS_SECRET_KEY (see README).")
        return await to_aiohttp_response(await request.app[SLACK].install(request.path, await to_bolt_request(request)))

    async def bot_messages(request: web.Request) -> web.Response:
        if not settings.microsoft_app_id and teams_auth is None and request.remote not in LOOPBACK:
            # Without an app id nothing is authenticated: fine for the Bot Framework Emulator on this
            # machine, never for the world (a stranger could open cases and make us call any URL).
            return web.json_response({"error": "Teams is not configured: set MicrosoftAppId and "
                                               "MicrosoftAppPassword (see README)"}, status=403)
        export_links.REQUEST.set(request)  # a Teams export answers with links to this bot's own address
        return await teams_glue().process(request)

    def teams_glue():
        if "glue" not in teams:
            # botbuilder costs ~25 MB and half a second to load: a Slack-only install never pays it.
            from handlers.teams import build_teams
            teams["glue"] = build_teams(settings=settings, recovery=recovery, auth=teams_auth)
        return teams["glue"]

    # A Teams summary owed before a restart loads the Teams glue when it is sent (handlers/teams/publish.py).
    recovery.outbox.register("teams.summary", Deferred(recovery.outbox, "teams.summary", teams_glue))
    # A close whose messages were never owed (a crash right after it) is made good (handlers/after_close.py).
    recovery.outbox.register(CLOSED, AfterClose(recovery.outbox, recovery,
                                                [after_close.teams(recovery), after_close.slack(recovery)]))
    # Follow-up reminders and idle nudges reach the owner on the case's platform (bot/followups.py); the Teams
    # glue, loaded when one is due, adds itself (handlers/teams/followups.py).
    follow_ups = FollowUpSender(recovery, which=lambda case: "teams" if after_close.on_teams(case) else "slack")
    follow_ups.loaders["teams"] = teams_glue
    recovery.outbox.register(REMINDER, follow_ups)
    recovery.outbox.register(NUDGE, follow_ups)
    # The weekly digest is owed slot by slot through the outbox (bot/digest.py); Slack's half joins in start_slack.
    digest_sender = digest_glue.register(recovery, teams=teams_glue)
    # Customer references and notes older than the workspace's retention are erased daily (bot/retention.py).
    retention_job = retention.RetentionJob(store=store, clock=recovery.outbox.clock, tz=recovery.tz)
    recovery.outbox.register(retention.KIND, retention_job)
    # Teams' export links (GET /api/export/{token}) are signed by this (handlers/export.py).
    app[export_links.LINKS] = export_links.Links(secret=settings.secret_key, clock=clock)

    async def start(app: web.Application) -> None:
        await store.open()
        if not settings.microsoft_app_id:
            log.warning("Teams: MicrosoftAppId is not set, so /api/messages accepts unauthenticated activities "
                        "from this machine only (Bot Framework Emulator); see README to register the bot.")
        if missing:
            log.warning("Slack is off: set %s (see README). /healthz still answers.", " and ".join(missing))
        else:
            start_slack(app)
        if not await owe_schedules():  # the database is down: the bot starts anyway, and owes them once it is back
            app[SCHEDULES] = asyncio.create_task(owe_schedules_when_reachable(), name="amends-schedules")
        # Sends what is owed to channels, resuming after a restart (bot/outbox.py), once its senders are known.
        recovery.outbox.start()

    async def owe_schedules() -> bool:
        """Each workspace's next digest and the next daily retention run are owed (one missed while the bot
        was down is owed still, and goes out now). False when the database can't be reached."""
        try:
            await retention_job.start()  # bot/retention.py
            await digests.seed_all(recovery)  # bot/digest.py
        except StoreUnavailable:
            return False
        recovery.outbox.wake()
        return True

    async def owe_schedules_when_reachable() -> None:
        wait, longest = SCHEDULES_RETRY
        while not await owe_schedules():
            log.warning("could not owe the digests and the retention run yet (database unreachable); "
                        "trying again in %.0f s", wait)
            await asyncio.sleep(wait)
            wait = min(longest, wait * 2)

    def start_slack(app: web.Application) -> None:
        app[HTTP] = ClientSession()
        app[SLACK] = build_slack_app(settings=settings, recovery=recovery, session=app[HTTP], clock=clock)
        # What the outbox owes Slack (summaries, closed cards) goes out with each workspace's token.
        slack_publish.register_outbox_senders(outbox=recovery.outbox, clients=app[SLACK].client_for, recovery=recovery,
                                admins=settings.admins)
        follow_ups.platforms["slack"] = SlackReach(clients=app[SLACK].client_for)  # reminders and nudges as DMs
        slack_digest.register(digest_sender, clients=app[SLACK].client_for, recovery=recovery)
        if settings.slack_socket_mode:
            from handlers.slack.socket_mode import SocketMode
            app[SOCKET] = SocketMode(bolt=app[SLACK].bolt, app_token=settings.slack_app_token)
            app[SOCKET].start()

    async def stop(app: web.Application) -> None:
        if SCHEDULES in app:
            app[SCHEDULES].cancel()
        if SOCKET in app:
            await app[SOCKET].stop()
        if SLACK in app:
            await app[SLACK].background.drain()
        await recovery.outbox.stop()  # what is still owed stays in the store for the next start
        if HTTP in app:
            await app[HTTP].close()
        await store.close()

    async def csat_result(request: web.Request) -> web.Response:
        return await csat_receive(request, secret=settings.csat_secret, threshold=settings.csat_threshold,
                                  recovery=recovery, slack=request.app.get(SLACK), admins=settings.admins,
                                  teams=teams_glue)

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_post("/api/csat", csat_result)
    app.router.add_get("/slack/install", slack_install)
    app.router.add_get("/slack/oauth_redirect", slack_install)
    app.router.add_post("/api/messages", bot_messages)
    app.router.add_get(export_links.ROUTE, export_links.handler(recovery, app[export_links.LINKS]))
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def main(argv: list[str]) -> int:
    if argv[:1] == ["doctor"]:
        from handlers.doctor import main as doctor
        return doctor(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ValueError as problem:
        print(f"Amends can't start: {problem}", file=sys.stderr)
        return 2
    log.info("starting with %s, store %s", settings, settings.db_shown)
    app = create_app(settings)
    # Everything loaded so far (code, the store's index) lives as long as the process: move it out of
    # the cyclic garbage collector's way, so a collection never walks it while an ack waits.
    gc.freeze()
    # No per-request access log: it costs CPU on every ack, and our own lines say what happened.
    web.run_app(app, host=settings.host, port=settings.port, access_log=None,
                print=lambda _: log.info("Amends is listening on http://%s:%d", settings.host, settings.port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
