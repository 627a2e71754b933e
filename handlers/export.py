"""GET /api/export/{token}: an admin's CSV export, downloaded through a short-lived signed link (Teams).

Teams has no simple "send a file to this person" for bots, so `recover admin export` answers with links
served here. A token says which workspace, which days and which file, and until when; it is signed with
HMAC-SHA256 under a key derived from AMENDS_SECRET_KEY (or, without one, a random key of this process:
links then die with it, and several processes need AMENDS_SECRET_KEY). Nothing is stored: the CSV is
made from the store when the link is opened. A forged, altered or expired token is a 403 that says
nothing about what it named.
"""

import base64
import binascii
import contextvars
import hashlib
import hmac
import json
import secrets
from datetime import date, datetime, timedelta, timezone

from aiohttp import web

from bot import export as exports
from bot.recovery import Recovery

LIFETIME = timedelta(minutes=15)
FILES = ("cases", "ledger")
ROUTE = "/api/export/{token}"
# The request being handled (set by the app for /api/messages), so a Teams command can say the link's address.
REQUEST: contextvars.ContextVar[web.Request | None] = contextvars.ContextVar("amends_request", default=None)
FORBIDDEN = "This download link is not valid or has expired. Ask for a new export: recover admin export."


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Links:
    """Makes and checks the signed tokens of export links."""

    def __init__(self, *, secret: str = "", clock=None):
        # A key of its own, derived from the secret (never the Fernet key itself); random without one.
        self.key = (hmac.new(secret.encode(), b"amends export links", hashlib.sha256).digest() if secret
                    else secrets.token_bytes(32))
        self.clock = clock

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(timezone.utc)

    def token(self, *, workspace: str, first: date, last: date, file: str) -> str:
        claims = {"w": workspace, "f": first.isoformat(), "l": last.isoformat(), "x": file,
                  "e": int((self._now() + LIFETIME).timestamp())}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{_b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())}"

    def read(self, token: str) -> dict | None:
        """The claims of a genuine, unexpired token; None for anything else."""
        payload, _, signature = (token or "").partition(".")
        try:
            expected = hmac.new(self.key, payload.encode(), hashlib.sha256).digest()
            if not payload or not hmac.compare_digest(expected, _unb64(signature)):
                return None
            claims = json.loads(_unb64(payload))
            if claims["x"] not in FILES or int(claims["e"]) < self._now().timestamp():
                return None
            date.fromisoformat(claims["f"]), date.fromisoformat(claims["l"])
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            return None
        return claims


LINKS = web.AppKey("export_links", Links)


def base_url(request: web.Request) -> str:
    """The address people reach this bot at: the proxy's (X-Forwarded-Proto/-Host) when there is one."""
    proto = (request.headers.get("X-Forwarded-Proto") or request.scheme).split(",")[0].strip()
    host = (request.headers.get("X-Forwarded-Host") or request.host).split(",")[0].strip()
    return f"{proto}://{host}"


def link(request: web.Request, links: Links, **claims) -> str:
    return base_url(request) + ROUTE.replace("{token}", links.token(**claims))


async def download(request: web.Request, *, recovery: Recovery, links: Links) -> web.Response:
    claims = links.read(request.match_info.get("token", ""))
    if claims is None:
        return web.Response(status=403, text=FORBIDDEN, headers={"Cache-Control": "no-store"})
    first, last = date.fromisoformat(claims["f"]), date.fromisoformat(claims["l"])
    wanted = exports.parse_range([first.isoformat(), last.isoformat()], today=last, tz=recovery.tz)
    window = {"workspace": claims["w"], "since": wanted.since, "until": wanted.until}
    if claims["x"] == "cases":  # a link is one file: only its own query, only its own CSV
        data = exports.cases_csv(await recovery.store.cases(**window))
    else:
        data = exports.ledger_csv(await recovery.store.ledger(**window))
    name = f"amends-{claims['x']}_{wanted.name}.csv"  # as bot/export.Export.files names it
    return web.Response(body=data, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


def handler(recovery: Recovery, links: Links):
    """The route's handler, bound to the app's recovery service and link signer."""
    async def export_download(request: web.Request) -> web.Response:
        return await download(request, recovery=recovery, links=links)
    return export_download
