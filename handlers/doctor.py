"""`python app.py doctor`: check the configuration and say what is wrong and exactly how to fix it.

It reads the settings as the bot does (.env, then the environment), asks Slack about each token
(auth.test, its X-OAuth-Scopes header, apps.connections.open, oauth.v2.access), looks at the
recovery channel (conversations.info / conversations.members), checks the Teams variables, and
opens the store. It changes nothing anywhere: the embedded store is opened from a copy, because
the running bot may hold the real file. Exit 0 only when nothing is wrong; 1 when something is;
2 when the settings themselves can't be read.
"""

import asyncio
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.store import MEMORY, open_store
from bot.store.postgres import is_postgres_url

APPS = "https://api.slack.com/apps"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
REINSTALL = (f"In {APPS} → your app → OAuth & Permissions → Bot Token Scopes add {{scopes}} (or paste "
             "slack-manifest.json again under App Manifest), then press Reinstall to Workspace and put the "
             "Bot User OAuth Token it shows into SLACK_BOT_TOKEN")


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


class Doctor:
    def __init__(self, settings: Settings, *, timeout: float = 10.0):
        self.settings = settings
        self.timeout = timeout
        self.findings: list[Finding] = []
        self.team: str | None = None  # the workspace SLACK_BOT_TOKEN belongs to, once auth.test says
        self.bot_user: str | None = None

    def good(self, what: str) -> None:
        self.findings.append(Finding(True, what))

    def bad(self, what: str, fix: str) -> None:
        self.findings.append(Finding(False, what, fix))

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    async def run(self) -> list[Finding]:
        s = self.settings
        slack_wanted = bool(s.slack_bot_token or s.slack_signing_secret or s.slack_app_token or s.slack_oauth)
        if not slack_wanted and not s.microsoft_app_id:
            self.bad("Nothing is configured: neither Slack nor Teams.",
                     "Follow README → 'Set up the Slack app' (or 'Microsoft Teams') and put the values it gives in .env.")
        if slack_wanted:
            await self.check_slack()
        self.check_teams()
        store = await self.open_store()
        if store is not None:
            try:
                if self.team and not s.slack_oauth:
                    await self.check_recovery_channel(store)
            finally:
                await _close_quietly(store)
        return self.findings

    # --- Slack -------------------------------------------------------------------------------
    def client(self, token: str | None = None) -> AsyncWebClient:
        return AsyncWebClient(token=token, base_url=self.settings.slack_api_url, timeout=self.timeout)

    async def call(self, method: str, *, token: str | None = None, **args):
        """The Web API answer, a SlackApiError's answer, or None when Slack can't be reached (said once)."""
        try:
            return await getattr(self.client(token), method)(**args)
        except SlackApiError as error:
            return error.response
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            self.bad(f"Can't reach Slack's Web API at {self.settings.slack_api_url} ({type(error).__name__}: {error}).",
                     "Check this machine's network and proxy; SLACK_API_URL should be left unset unless you use "
                     "GovSlack (https://slack-gov.com/api/).")
            return None

    async def check_slack(self) -> None:
        s = self.settings
        mode = ("many workspaces (OAuth)" if s.slack_oauth else "one workspace") + \
               (", Socket Mode" if s.slack_socket_mode else ", HTTP (/slack/events)")
        missing = s.missing_for_slack()
        for name in missing:
            self.bad(f"Slack ({mode}): {name} is not set.", FIX_MISSING[name])
        if not missing:
            self.good(f"Slack: every variable {mode} needs is set.")
        if s.slack_oauth:
            await self.check_oauth()
        elif s.slack_bot_token:
            await self.check_bot_token()
        if s.slack_socket_mode:
            await self.check_app_token()

    async def check_bot_token(self) -> None:
        from handlers.slack.oauth import BOT_SCOPES

        token = self.settings.slack_bot_token
        if not token.startswith("xoxb-"):
            kind = {"xoxp-": "a user token", "xapp-": "an app-level token", "xoxe": "a refresh token"}
            named = next((v for k, v in kind.items() if token.startswith(k)), "not a bot token")
            self.bad(f"SLACK_BOT_TOKEN is {named} (it must start with xoxb-).",
                     f"Copy the Bot User OAuth Token from {APPS} → your app → OAuth & Permissions into SLACK_BOT_TOKEN.")
            return
        answer = await self.call("auth_test", token=token)
        if answer is None:
            return
        if not answer.get("ok"):
            self.bad(f"Slack refused SLACK_BOT_TOKEN: auth.test answered {answer.get('error')}.",
                     f"The token is wrong, revoked or from an uninstalled app. In {APPS} → your app → OAuth & "
                     "Permissions press (Re)install to Workspace and copy the Bot User OAuth Token into SLACK_BOT_TOKEN.")
            return
        self.team, self.bot_user = answer.get("team_id"), answer.get("user_id")
        self.good(f"Slack accepts SLACK_BOT_TOKEN: bot {answer.get('user')} in {answer.get('team')} ({self.team}).")
        granted = {x.strip() for x in (answer.headers.get("x-oauth-scopes") or "").split(",") if x.strip()}
        lacking = [scope for scope in BOT_SCOPES if scope not in granted]
        if lacking:
            self.bad(f"The bot token lacks the scope(s) {', '.join(lacking)}.",
                     REINSTALL.format(scopes=", ".join(lacking)) + ".")
        else:
            self.good(f"The bot token has every scope Amends uses ({', '.join(BOT_SCOPES)}).")

    async def check_oauth(self) -> None:
        s = self.settings
        if s.slack_bot_token:
            self.bad("SLACK_BOT_TOKEN is set together with SLACK_CLIENT_ID: with OAuth each workspace's token comes "
                     "from its installation, and SLACK_BOT_TOKEN is ignored.",
                     "Remove SLACK_BOT_TOKEN, or remove SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for one workspace.")
        if s.slack_redirect_uri and not (s.slack_redirect_uri.startswith("https://")
                                         and s.slack_redirect_uri.endswith("/slack/oauth_redirect")):
            self.bad(f"SLACK_REDIRECT_URI {s.slack_redirect_uri!r} is not https://<your-host>/slack/oauth_redirect.",
                     "Set it to https://<your-host>/slack/oauth_redirect, the same URL as under OAuth & Permissions → "
                     "Redirect URLs (slack-manifest.oauth.json lists it).")
        if not (s.slack_client_id and s.slack_client_secret):
            return
        # A made-up code tells the two apart: Slack checks the app's id and secret before the code.
        answer = await self.call("oauth_v2_access", client_id=s.slack_client_id,
                                 client_secret=s.slack_client_secret, code="amends-doctor-check")
        if answer is None:
            return
        error = answer.get("error")
        if error in ("invalid_client_id", "bad_client_secret", "invalid_client"):
            self.bad(f"Slack refused SLACK_CLIENT_ID / SLACK_CLIENT_SECRET ({error}).",
                     f"Copy Client ID and Client Secret from {APPS} → your app → Basic Information → App Credentials.")
        else:
            self.good("Slack knows SLACK_CLIENT_ID and SLACK_CLIENT_SECRET; workspaces install at "
                      "https://<your-host>/slack/install.")

    async def check_app_token(self) -> None:
        token = self.settings.slack_app_token
        if not token.startswith("xapp-"):
            self.bad("SLACK_APP_TOKEN is not an app-level token (it must start with xapp-).",
                     f"In {APPS} → your app → Basic Information → App-Level Tokens, generate one with the "
                     "connections:write scope and put it in SLACK_APP_TOKEN.")
            return
        answer = await self.call("apps_connections_open", app_token=token)
        if answer is None:
            return
        if not answer.get("ok"):
            self.bad(f"Slack refused SLACK_APP_TOKEN for Socket Mode: apps.connections.open answered "
                     f"{answer.get('error')}.",
                     f"In {APPS} → your app turn on Socket Mode, and generate an App-Level Token with "
                     "connections:write (Basic Information → App-Level Tokens) for SLACK_APP_TOKEN.")
        else:
            self.good("Slack accepts SLACK_APP_TOKEN: Socket Mode can connect.")

    async def check_recovery_channel(self, store) -> None:
        channel = await store.recovery_channel(workspace=self.team)
        if not channel:
            self.bad("No recovery channel is set, so case summaries stay in each case's thread.",
                     "Invite the bot to the managers' channel (/invite @Amends), then an admin runs "
                     "/recover admin channel #that-channel.")
            return
        token = self.settings.slack_bot_token
        info = await self.call("conversations_info", token=token, channel=channel)
        if info is None:
            return
        if not info.get("ok"):
            self.bad(f"The recovery channel {channel} can't be seen by the bot ({info.get('error')}): it was deleted, "
                     "or it is private and the bot is not in it.",
                     "Invite the bot there (/invite @Amends), or pick another with /recover admin channel #channel.")
            return
        name = "#" + (info["channel"].get("name") or channel)
        member = info["channel"].get("is_member")
        if member is None:  # some conversations leave it out: ask for the members instead
            members = await self.call("conversations_members", token=token, channel=channel)
            member = members is not None and self.bot_user in (members.get("members") or [])
        if not member:
            self.bad(f"The bot is not a member of the recovery channel {name}, so summaries can't be posted there.",
                     f"In Slack, open {name} and type /invite @Amends.")
        else:
            self.good(f"The recovery channel is {name} and the bot is in it.")

    # --- Teams -------------------------------------------------------------------------------
    def check_teams(self) -> None:
        s = self.settings
        if not s.microsoft_app_id:
            if s.microsoft_app_password:
                self.bad("MicrosoftAppPassword is set but MicrosoftAppId is not.",
                         "Copy the Microsoft App ID from the Azure Bot's Configuration page into MicrosoftAppId.")
            return
        if not GUID.match(s.microsoft_app_id):
            self.bad(f"MicrosoftAppId {s.microsoft_app_id!r} is not a GUID like 9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d.",
                     "Copy the Microsoft App ID from the Azure Bot's Configuration page into MicrosoftAppId.")
        if not s.microsoft_app_password:
            self.bad("Teams: MicrosoftAppId is set without MicrosoftAppPassword, so the bot can't answer in Teams.",
                     "In Azure, on the bot's Configuration page follow Manage Password → New client secret, and put "
                     "its value in MicrosoftAppPassword.")
        if s.microsoft_app_type not in ("MultiTenant", "SingleTenant", "UserAssignedMSI"):
            self.bad(f"MicrosoftAppType {s.microsoft_app_type!r} is not MultiTenant, SingleTenant or UserAssignedMSI.",
                     "Set MicrosoftAppType to the Type of app shown on the Azure Bot's Configuration page.")
        elif s.microsoft_app_type != "MultiTenant" and not s.microsoft_app_tenant_id:
            self.bad(f"Teams: MicrosoftAppType is {s.microsoft_app_type} but MicrosoftAppTenantId is not set.",
                     "Copy the App Tenant ID from the Azure Bot's Configuration page into MicrosoftAppTenantId.")
        if s.microsoft_app_password and GUID.match(s.microsoft_app_id):
            self.good("Teams: MicrosoftAppId and MicrosoftAppPassword are set.")

    # --- the store ----------------------------------------------------------------------------
    async def open_store(self):
        """The store, opened and read once as the bot would; None (and the problem said) when it can't be."""
        s = self.settings
        location, copy = s.db, None
        if not is_postgres_url(location) and location != MEMORY:
            location, copy = self._copy_of_the_file(Path(location))
            if location is None:
                return None
        store = None
        try:
            store = open_store(location, pool_size=1)  # the embedded store reads its file here already
            if copy is not None:
                store = _CopiedStore(store, copy)
            await store.open()
            await store.recovery_channel(workspace="_amends_doctor")  # one real read: is it really there?
        except Exception as error:  # whatever it is, the bot would fail the same way
            if store is not None:
                await _close_quietly(store)
            if copy is not None:
                copy.cleanup()
            self.bad(f"Can't open the store AMENDS_DB={s.db_shown} ({type(error).__name__}: {error}).",
                     FIX_STORE_PG if is_postgres_url(s.db) else FIX_STORE_FILE)
            return None
        if s.db == MEMORY:
            self.good("Store: memory only (:memory:): nothing is kept across restarts; fine for a demo.")
        elif location == MEMORY:
            self.good(f"Store: {s.db_shown} does not exist yet; start-up creates it (its folder can be written).")
        else:
            self.good(f"Store: {s.db_shown} opens and reads.")
        return store

    def _copy_of_the_file(self, path: Path):
        """The TinyDB file (and its journal) copied aside: the running bot may be writing the real one."""
        parent = path.absolute().parent
        if not path.exists():
            while not parent.exists():  # start-up makes the missing folders
                parent = parent.parent
            if not _writable(parent):
                self.bad(f"The store's folder {parent} does not exist or can't be written, so AMENDS_DB={path} "
                         "can't be created.", FIX_STORE_FILE)
                return None, None
            return MEMORY, None  # a fresh file: start-up creates it; nothing to read yet
        copy = tempfile.TemporaryDirectory(prefix="amends-doctor-")
        try:
            for source in (path, Path(str(path) + ".journal")):
                if source.exists():
                    shutil.copyfile(source, Path(copy.name) / source.name)
        except OSError as error:
            copy.cleanup()
            self.bad(f"Can't read the store AMENDS_DB={path} ({error}).", FIX_STORE_FILE)
            return None, None
        return str(Path(copy.name) / path.name), copy


class _CopiedStore:
    """A store opened from a copy; closing it removes the copy."""

    def __init__(self, store, copy: tempfile.TemporaryDirectory):
        self._store, self._copy = store, copy

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def close(self) -> None:
        try:
            await self._store.close()
        finally:
            self._copy.cleanup()


async def _close_quietly(store) -> None:
    try:
        await store.close()
    except Exception:
        pass


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


FIX_MISSING = {
    "SLACK_BOT_TOKEN": f"Copy the Bot User OAuth Token (xoxb-…) from {APPS} → your app → OAuth & Permissions "
                       "into SLACK_BOT_TOKEN in .env.",
    "SLACK_SIGNING_SECRET": f"Copy the Signing Secret from {APPS} → your app → Basic Information → App Credentials "
                            "into SLACK_SIGNING_SECRET in .env (or use Socket Mode: set SLACK_APP_TOKEN).",
    "SLACK_CLIENT_ID": f"Copy the Client ID from {APPS} → your app → Basic Information → App Credentials into "
                       "SLACK_CLIENT_ID.",
    "SLACK_CLIENT_SECRET": f"Copy the Client Secret from {APPS} → your app → Basic Information → App Credentials "
                           "into SLACK_CLIENT_SECRET.",
    "AMENDS_SECRET_KEY": "Make a key with: .venv/bin/python -c \"from cryptography.fernet import Fernet; "
                         "print(Fernet.generate_key().decode())\" and put it in AMENDS_SECRET_KEY (keep a copy: "
                         "without it the stored workspace tokens can't be read).",
}
FIX_STORE_FILE = ("Point AMENDS_DB at a file in a folder the bot's user can write (default data/amends.json), "
                  "or restore the file from a backup.")
FIX_STORE_PG = ("Check that PostgreSQL is running and reachable from here, and that AMENDS_DB's user, database and "
                "PGPASSWORD (or ~/.pgpass) are right: try psql with the same URL.")


def report(findings: list[Finding], *, out=sys.stdout) -> None:
    print("Amends doctor: checking the configuration (.env and the environment)\n", file=out)
    for finding in findings:
        print(f"  {'ok ' if finding.ok else 'BAD'}  {finding.what}", file=out)
        if finding.fix:
            print(f"       fix: {finding.fix}", file=out)
    problems = sum(not f.ok for f in findings)
    if problems:
        print(f"\n{problems} problem{'s' if problems != 1 else ''}. Fix {'them' if problems != 1 else 'it'}, then run "
              "`python app.py doctor` again.", file=out)
    else:
        print("\nAll well.", file=out)


def main(argv: list[str], *, environ=None, out=sys.stdout) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__, file=out)
        return 0
    try:
        settings = Settings.from_env(environ)
    except ValueError as problem:
        print(f"Amends doctor: the settings can't be read: {problem}", file=out)
        return 2
    findings = asyncio.run(Doctor(settings).run())
    report(findings, out=out)
    return 1 if any(not f.ok for f in findings) else 0
