"""Installing Amends in many Slack workspaces: Bolt's OAuth flow, with its two stores on ours.

`StoreInstallationStore` keeps each workspace's installation as one reference record in that
workspace's own partition (key "slack-installation:<enterprise>:<team>"), the whole installation
sealed with Fernet under AMENDS_SECRET_KEY: the store (its file, its backups, a database dump) never
holds a usable token. Uninstalling, or Slack revoking the bot token, overwrites the record with a
tombstone, so no token is left behind.

`StoreOAuthStateStore` keeps the `state` of each /slack/install visit with the time it was issued,
and consumes it once at /slack/oauth_redirect: a forged state is not found, a replayed one is not
the first time, an expired one is refused by its recorded time.

Both only use the store's existing methods (put_reference, reference, first_time).
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.clock import Clock
from bot.settings import Settings, check_secret_keys
from bot.store import Store

log = logging.getLogger(__name__)

# What the bot asks for when a workspace installs it: exactly what the code calls (tests/test_manifests.py
# checks this against the Web API methods the code uses and against every manifest). channels:read and
# groups:read are for `doctor`, which asks conversations.info whether the bot is in the recovery channel.
BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read", "channels:read", "groups:read",
              "channels:history", "groups:history", "files:write")  # files: the digest's chart, exports
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
NOT_INSTALLED = ("Amends isn't installed in this workspace (or was removed from it). Ask a workspace admin to "
                 "install it again from the install link.")
STATE_WORKSPACE = "_slack_oauth"  # a partition of its own: no Slack team or Teams tenant id starts with "_"
STATE_LIFETIME = timedelta(minutes=10)
# A process keeps a found installation this long, so a request's ack never waits on the store;
# an uninstall here drops it at once (another process's copy ages out; Slack stops sending anyway).
FOUND_FOR_SECONDS = 60.0


def installation_key(*, enterprise_id: str | None, team_id: str | None) -> str:
    return f"slack-installation:{enterprise_id or '-'}:{team_id or '-'}"


def installation_workspace(*, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool) -> str:
    """The partition an installation lives in: the workspace (team id), or the org for an org-wide install."""
    if is_enterprise_install or not team_id:
        return enterprise_id or ""
    return team_id


class Sealer:
    """Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under AMENDS_SECRET_KEY. With several
    comma-separated keys the first seals and any opens, so a key can be rotated without reinstalling."""

    def __init__(self, secret_keys: str):
        self._fernet = MultiFernet([Fernet(key) for key in check_secret_keys(secret_keys)])

    def seal(self, value: dict) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, sealed: str) -> dict:
        """The value, or InvalidToken when it was sealed under another key or changed."""
        return json.loads(self._fernet.decrypt(sealed.encode()))


class StoreInstallationStore(AsyncInstallationStore):
    def __init__(self, *, store: Store, sealer: Sealer, clock: Clock):
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self._found: dict[str, tuple[float, Installation]] = {}

    @property
    def logger(self) -> logging.Logger:
        return log

    # --- saving ------------------------------------------------------------------------------
    async def async_save(self, installation: Installation) -> None:
        """Keep the installation (bot token, scopes, installer) sealed in its workspace's partition."""
        where = self._where(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        await self.store.put_reference(**where, value={
            "team_id": installation.team_id, "enterprise_id": installation.enterprise_id,
            "saved_at": self.clock.now().isoformat(), "sealed": self.sealer.seal(installation.__dict__)})
        self._found.pop(where["key"], None)
        log.info("Slack workspace %s (%s) installed Amends", installation.team_id or installation.enterprise_id,
                 installation.team_name or installation.enterprise_name or "?")

    async def async_save_bot(self, bot: Bot) -> None:
        """A rotated bot token: replace the bot's part of the stored installation."""
        installation = await self._load(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        if installation is None:
            installation = Installation(app_id=bot.app_id, enterprise_id=bot.enterprise_id, team_id=bot.team_id,
                                        is_enterprise_install=bot.is_enterprise_install, user_id="")
        for name in ("bot_token", "bot_id", "bot_user_id", "bot_scopes", "bot_refresh_token",
                     "bot_token_expires_at"):
            setattr(installation, name, getattr(bot, name))
        await self.async_save(installation)

    # --- finding -----------------------------------------------------------------------------
    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        installation = await self._load(enterprise_id, team_id, is_enterprise_install)
        if installation is None or (user_id is not None and installation.user_id != user_id):
            return None
        return installation

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        installation = await self._load(enterprise_id, team_id, is_enterprise_install)
        if installation is None or not installation.bot_token:
            return None
        return installation.to_bot()

    # --- removing ----------------------------------------------------------------------------
    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """The bot token was revoked: without it nothing works, so nothing of the installation is kept."""
        await self._bury(enterprise_id, team_id, why="bot token revoked")

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        if user_id is None:
            await self._bury(enterprise_id, team_id, why="uninstalled")
            return
        installation = await self._load(enterprise_id, team_id, None)
        if installation is not None and installation.user_id == user_id and installation.user_token:
            installation.user_token = installation.user_refresh_token = None
            installation.user_token_expires_at = None
            await self.async_save(installation)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._bury(enterprise_id, team_id, why="uninstalled")

    # --- the records -------------------------------------------------------------------------
    def _where(self, enterprise_id, team_id, is_enterprise_install) -> dict:
        is_org = bool(is_enterprise_install)
        return {"workspace": installation_workspace(enterprise_id=enterprise_id, team_id=team_id,
                                                    is_enterprise_install=is_org),
                "key": installation_key(enterprise_id=enterprise_id, team_id=None if is_org else team_id)}

    async def _load(self, enterprise_id, team_id, is_enterprise_install) -> Installation | None:
        where = self._where(enterprise_id, team_id, is_enterprise_install)
        if is_enterprise_install is None:  # a deletion does not say which: the workspace's own first
            found = await self._load(enterprise_id, team_id, False)
            return found if found is not None or not enterprise_id else await self._load(enterprise_id, team_id, True)
        cached = self._found.get(where["key"])
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        record = await self.store.reference(**where)
        if not record or not record.get("sealed"):
            return None
        try:
            installation = Installation(**self.sealer.open(record["sealed"]))
        except InvalidToken:
            log.error("the Slack installation of %s can't be opened with AMENDS_SECRET_KEY (another key sealed "
                      "it): put that key back (first or after the new one), or install Amends there again",
                      where["workspace"])
            return None
        self._found[where["key"]] = (time.monotonic() + FOUND_FOR_SECONDS, installation)
        return installation

    async def _bury(self, enterprise_id, team_id, *, why: str) -> None:
        for is_org in (False, True):
            if is_org and not enterprise_id:
                continue
            where = self._where(enterprise_id, team_id, is_org)
            if await self.store.reference(**where) is None:
                continue
            # Overwritten, not forgotten: the record stays (the store has no delete), its token does not.
            await self.store.put_reference(**where, value={
                "team_id": team_id, "enterprise_id": enterprise_id, "removed_at": self.clock.now().isoformat(),
                "removed": why, "sealed": None})
            self._found.pop(where["key"], None)
            log.info("Slack workspace %s: %s; its tokens were removed", where["workspace"], why)


class StoreOAuthStateStore(AsyncOAuthStateStore):
    """Anyone can open /slack/install, so what it writes is bounded: a state's record lives in one of
    `slots` slots (by its hash), a newer state pushing out an older one in the same slot (a 1-in-4096
    chance per visit that an install in flight must be started again), and only the hash is stored."""

    def __init__(self, *, store: Store, clock: Clock, lifetime: timedelta = STATE_LIFETIME, slots: int = 4096):
        self.store = store
        self.clock = clock
        self.lifetime = lifetime
        self.slots = slots

    @property
    def logger(self) -> logging.Logger:
        return log

    def _slot(self, digest: str) -> str:
        return f"slack-oauth-state:{int(digest, 16) % self.slots}"

    async def async_issue(self, *args, **kwargs) -> str:
        state = secrets.token_urlsafe(32)
        digest = _digest(state)
        await self.store.put_reference(workspace=STATE_WORKSPACE, key=self._slot(digest),
                                       value={"digest": digest, "issued_at": self.clock.now().isoformat()})
        return state

    async def async_consume(self, state: str) -> bool:
        """True once for a state we issued within its lifetime; False for a forged, replayed or old one."""
        if not state or len(state) > 200:
            return False
        digest = _digest(state)
        record = await self.store.reference(workspace=STATE_WORKSPACE, key=self._slot(digest))
        if not record or not hmac.compare_digest(record.get("digest", ""), digest) or "issued_at" not in record:
            log.warning("Slack install refused: a state we never issued (or already used)")
            return False
        now = self.clock.now()
        if now - datetime.fromisoformat(record["issued_at"]) > self.lifetime:
            log.warning("Slack install refused: its state expired (installs must finish within %s)", self.lifetime)
            return False
        if not await self.store.first_time(key=f"slack-oauth-state:{digest}", at=now, keep=self.lifetime):
            log.warning("Slack install refused: its state was already used")
            return False
        await self.store.put_reference(workspace=STATE_WORKSPACE, key=self._slot(digest),
                                       value={"digest": digest, "consumed_at": now.isoformat()})
        return True


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class Throttle:
    """At most `burst` at once, refilled at `per_second`: what an unauthenticated page may make us write."""

    def __init__(self, *, per_second: float = 2.0, burst: int = 20, now=time.monotonic):
        self.per_second, self.burst, self.now = per_second, burst, now
        self._tokens, self._at = float(burst), now()

    def take(self) -> bool:
        at = self.now()
        self._tokens = min(self.burst, self._tokens + (at - self._at) * self.per_second)
        self._at = at
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def oauth_settings(*, settings: Settings, store: Store, clock: Clock) -> AsyncOAuthSettings:
    """Bolt's OAuth settings on our stores; /slack/install sends the installer straight to Slack."""
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri or None,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        install_page_rendering_enabled=False,
        installation_store=StoreInstallationStore(store=store, sealer=Sealer(settings.secret_key), clock=clock),
        installation_store_bot_only=True,
        state_store=StoreOAuthStateStore(store=store, clock=clock),
        state_expiration_seconds=int(STATE_LIFETIME.total_seconds()),
        authorization_url=_authorize_url(settings.slack_api_url),
    )


def authorize(*, settings: AsyncOAuthSettings, client) -> AsyncInstallationStoreAuthorize:
    """Bolt's authorize for many workspaces, with its auth.test answer cached per token: otherwise
    every request would wait on a Web API call before its ack."""
    return AsyncInstallationStoreAuthorize(
        logger=log, client_id=settings.client_id, client_secret=settings.client_secret,
        installation_store=settings.installation_store, bot_only=True, cache_enabled=True, client=client)


def _authorize_url(api_url: str) -> str:
    """Slack's consent page lives beside its Web API (https://slack.com/api/ → https://slack.com/oauth/v2/authorize),
    which also keeps GovSlack and a local double consistent."""
    base = api_url[: -len("api/")] if api_url.endswith("/api/") else api_url
    return base + "oauth/v2/authorize"


__all__ = ["BOT_SCOPES", "INSTALL_PATH", "REDIRECT_PATH", "Sealer", "StoreInstallationStore",
           "StoreOAuthStateStore", "Throttle", "oauth_settings", "authorize"]
