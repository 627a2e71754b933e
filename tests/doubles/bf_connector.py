"""A fake Bot Framework connector: the service at an activity's serviceUrl, speaking the real protocol.

It listens on 127.0.0.1 (port 0) and answers what Amends calls the way the connector does:
POST /v3/conversations/{id}/activities[/{replyToId}] → 201 {"id"}, PUT …/activities/{id} → 200
(404 for an activity it never saw in that conversation), GET …/members/{memberId} → the member
(404 if unknown). Conversation ids arrive percent-encoded (`19%3A…%3Bmessageid%3D…`) and are
unquoted here. Every call is recorded (method, path, body, headers); every activity is checked
as Teams would: each Adaptive Card against the 1.5 schema (the Teams-only `msteams` key taken
off first), version 1.5, every Action.Execute with a matching Action.Submit fallback, unique
input ids, no text next to a card, and at most 28 KB on the wire. Anything Teams would reject
is answered 400 and listed in `problems`, which the fixture asserts is empty.
Tests `await wait_for(...)` with a deadline; they never sleep.
"""

import asyncio
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web
from botbuilder.schema import ActivityTypes
from botframework.connector.auth import MicrosoftAppCredentials, PasswordServiceClientCredentialFactory
from jsonschema import Draft6Validator
from jsonschema.exceptions import best_match

from cards.teams import ACTIVITY_MAX, CARD_TYPE, VERSION
from tests.doubles import serve_on_loopback

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "adaptive-card-1.5.0.json").read_text())
CARD_CHECK = Draft6Validator(SCHEMA)
ACTIVITIES = re.compile(r"^/v3/conversations/(?P<conversation>[^/]+)/activities(?:/(?P<activity>[^/]+))?$")
MEMBER = re.compile(r"^/v3/conversations/(?P<conversation>[^/]+)/members/(?P<member>[^/]+)$")
INPUT = re.compile(r"^Input\.")


@dataclass
class Call:
    method: str
    raw_path: str
    conversation: str
    activity_id: str | None  # the activity replied to (POST) or replaced (PUT)
    body: dict | None
    headers: dict
    size: int
    status: int = 0
    answer: dict = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        """The id of the message this call left in the conversation."""
        return self.answer.get("id")

    @property
    def card(self) -> dict | None:
        for attachment in (self.body or {}).get("attachments") or []:
            if attachment.get("contentType") == CARD_TYPE:
                return attachment["content"]
        return None

    @property
    def shown(self) -> str:
        """Everything the card shows, as one string to search."""
        return json.dumps(self.card, ensure_ascii=False) if self.card else ""


# --- what Teams checks -----------------------------------------------------------------------

def card_problems(card: object) -> list[str]:
    """Why Teams would not render this card (empty when it would)."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return [f"not an Adaptive Card: {card!r:.200}"]
    problems = []
    if card.get("version") != VERSION:
        problems.append(f"card version {card.get('version')!r}, Teams bots need {VERSION}")
    strict = {k: v for k, v in card.items() if k != "msteams"}  # Teams-only; the schema is strict
    error = best_match(CARD_CHECK.iter_errors(strict))
    if error is not None:
        problems.append(f"schema: {error.message} at {'/'.join(map(str, error.absolute_path))}")
    inputs = [element["id"] for element in _walk(card.get("body", [])) if INPUT.match(element.get("type", ""))]
    if len(inputs) != len(set(inputs)):
        problems.append(f"duplicate input ids {inputs}")
    for action in [*_walk(card.get("actions", [])), *_walk(card.get("body", []))]:
        if action.get("type") == "Action.Execute":
            fallback = action.get("fallback") or {}
            if not action.get("verb") or (action.get("data") or {}).get("verb") != action["verb"]:
                problems.append(f"Action.Execute without its verb in data: {action!r:.200}")
            if fallback.get("type") != "Action.Submit" or fallback.get("data") != action.get("data"):
                problems.append(f"Action.Execute without the same Action.Submit as fallback: {action!r:.200}")
    return problems


def _walk(items) -> list[dict]:
    """Every element and action in a card body, depth first."""
    found = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            found.append(item)
            for key in ("items", "columns", "actions", "inlines"):
                found += _walk(item.get(key))
    return found


def activity_problems(activity: dict, size: int) -> list[str]:
    problems = []
    if size > ACTIVITY_MAX:
        problems.append(f"activity of {size} bytes, over Teams' {ACTIVITY_MAX}")
    if activity.get("type") != ActivityTypes.message:
        problems.append(f"activity type {activity.get('type')!r}")
    attachments = activity.get("attachments") or []
    if activity.get("text") and attachments:
        problems.append("text and a card in one activity: Teams splits them and the card's id is lost")
    if not activity.get("text") and not attachments:
        problems.append("an empty message")
    for attachment in attachments:
        if attachment.get("contentType") != CARD_TYPE:
            problems.append(f"attachment {attachment.get('contentType')!r}")
        else:
            problems += card_problems(attachment.get("content"))
    return problems


class NoOutboundTokens(PasswordServiceClientCredentialFactory):
    """Inbound tokens are checked for `app_id` as usual; outbound calls carry no token, so nothing tries
    to reach login.microsoftonline.com (the fake connector needs none)."""

    async def create_credentials(self, app_id, oauth_scope, login_endpoint, validate_authority):
        return MicrosoftAppCredentials.empty()


# --- the connector ---------------------------------------------------------------------------

class FakeConnector:
    def __init__(self):
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.members: dict[str, dict] = {}
        self._posted: dict[str, set[str]] = {}
        self._failures: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._ids = itertools.count(1764072001000)  # Teams' activity ids are millisecond timestamps
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> "FakeConnector":
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # --- test controls -----------------------------------------------------------------------
    def add_member(self, *, id: str, aad: str, name: str) -> None:
        self.members[id] = {"id": id, "name": name, "aadObjectId": aad, "givenName": name.split()[0],
                            "userPrincipalName": f"{name.split()[0].lower()}@contoso.example", "userRole": "user"}

    def fail_next(self, conversation: str, *, method: str = "POST", status: int = 403,
                  code: str = "MessageWritesBlocked") -> None:
        """Make the next POST (or PUT) in `conversation` fail the way Teams does (e.g. the bot was removed)."""
        self._failures.setdefault((method, conversation), []).append((status, code))

    def posts(self, conversation: str | None = None) -> list[Call]:
        """Messages the bot left (POSTs that succeeded), oldest first."""
        return [c for c in self.calls if c.method == "POST" and c.status == 201 and c.id
                and (conversation is None or c.conversation == conversation)]

    def updates(self, activity_id: str) -> list[Call]:
        return [c for c in self.calls if c.method == "PUT" and c.activity_id == activity_id and c.status == 200]

    async def wait_for(self, where, *, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until at least `count` recorded calls match `where`; return all that match."""
        def matching():
            return [call for call in self.calls if where(call)]
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
            except TimeoutError:
                seen = [(c.method, c.conversation, c.card and c.card.get("fallbackText")) for c in self.calls]
                raise AssertionError(f"expected {count} matching call(s) within {timeout}s; got {seen}") from None
        return matching()

    # --- the protocol ------------------------------------------------------------------------
    async def _serve(self, request: web.Request) -> web.Response:
        raw = await request.read()
        raw_path = request.raw_path.split("?")[0]
        activities, member = ACTIVITIES.match(raw_path), MEMBER.match(raw_path)
        matched = activities or member
        call = Call(method=request.method, raw_path=raw_path, body=json.loads(raw) if raw else None,
                    conversation=unquote(matched["conversation"]) if matched else "",
                    activity_id=unquote(activities["activity"]) if activities and activities["activity"] else None,
                    headers=dict(request.headers), size=len(raw))
        if activities and request.method in ("POST", "PUT"):
            call.status, call.answer = self._activity(call)
        elif member and request.method == "GET":
            call.status, call.answer = self._member(unquote(member["member"]))
        else:
            self.problems.append(f"unexpected connector call {request.method} {raw_path}")
            call.status, call.answer = 404, _error("BadArgument", "unknown operation")
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return web.json_response(call.answer, status=call.status)

    def _activity(self, call: Call) -> tuple[int, dict]:
        problems = activity_problems(call.body or {}, call.size)
        if problems:
            self.problems += problems
            return 400, _error("BadSyntax", "; ".join(problems))
        posted = self._posted.setdefault(call.conversation, set())
        if self._failures.get((call.method, call.conversation)):
            status, code = self._failures[(call.method, call.conversation)].pop(0)
            return status, _error(code, "Teams refused the message")
        if call.method == "PUT":
            if call.activity_id not in posted:
                return 404, _error("ActivityNotFoundInConversation", "The activity was not found")
            return 200, {"id": call.activity_id}
        new_id = str(next(self._ids))
        posted.add(new_id)
        return 201, {"id": new_id}

    def _member(self, member_id: str) -> tuple[int, dict]:
        found = self.members.get(member_id)
        if found is None:
            return 404, _error("MemberNotFoundInConversation", "The member was not found in the conversation")
        return 200, found


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
