"""Drives the bot the way Teams does: Bot Framework activities built from recorded payloads
(tests/fixtures/teams_*.json), POSTed to /api/messages, with replies going to a fake connector.

Each helper changes only what the test names (who, where, what was typed or tapped) in a recorded
payload. A tap is built from a card the bot actually sent (found in the fake connector's records):
the action with the verb is looked up in that card, its data sent as Teams sends it — Action.Execute
as an `adaptiveCard/action` invoke, or its Action.Submit fallback as a message — with the card's
inputs filled in as typed (Teams sends every input as a string).

The pytest fixtures built on it are in tests/doubles/teams_fixtures.py.
"""

import copy
import html
import itertools
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.checklist import CHECKLIST, Step
from bot.settings import Settings
from cards.teams import step_title
from tests.doubles.bf_connector import Call, FakeConnector

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT_ID = "28:9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


@dataclass(frozen=True)
class Person:
    mri: str  # Teams' id of the person for this bot (29:…)
    aad: str  # their AAD object id: who they are to Amends
    name: str


@dataclass(frozen=True)
class Channel:
    id: str
    name: str


AMY = Person("29:1Zm5vAmyBakerPersonalMriXyz0123456789abcdefABCDEF", "4f1c2a6e-7b1d-4c59-9a0e-1a2b3c4d5e01", "Amy Baker")
BEN = Person("29:1Zm5vBenCarterMriXyz0123456789abcdefABCDEFbenxyz", "4f1c2a6e-7b1d-4c59-9a0e-1a2b3c4d5e02", "Ben Carter")
CAL = Person("29:1Zm5vCalDiazMriXyz0123456789abcdefABCDEFcalxyz00", "4f1c2a6e-7b1d-4c59-9a0e-1a2b3c4d5e03", "Cal Diaz")
ADA = Person("29:1Zm5vAdaOwnerMriAbc0123456789abcdefABCDEFadminxyz", "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a502", "Ada Okafor")
PEOPLE = (AMY, BEN, CAL, ADA)
ADMINS = frozenset({ADA.aad})  # AMENDS_ADMINS of the Teams tests

FLOOR = Channel("19:8d2f0a6c4b1e4f7a9c3d5e7f9a1b3c5d@thread.tacv2", "Floor")
RECOVERIES = Channel("19:5a7c9e1b3d5f4a6c8e0b2d4f6a8c0e2b@thread.tacv2", "Recoveries")
TEAM = {"id": "19:0f1e2d3c4b5a69788796a5b4c3d2e1f0@thread.tacv2", "name": "Riverside Bistro",
        "aadGroupId": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def personal_conversation(person: Person) -> str:
    """Each person's 1:1 chat with the bot (Amy's is the recorded one)."""
    recorded = fixture("teams_message_personal.json")["conversation"]["id"]
    return recorded if person == AMY else f"a:1{person.aad.replace('-', '')}"


class TeamsDriver:
    def __init__(self, *, bot_url: str, connector: FakeConnector, session: aiohttp.ClientSession):
        self.bot_url = bot_url
        self.connector = connector
        self.session = session
        self.token = None  # a callable giving an Authorization header value, when auth is on
        self._ids = itertools.count(1764072100000)

    # --- the wire ----------------------------------------------------------------------------
    async def post(self, activity: dict, *, headers: dict | None = None) -> tuple[int, object]:
        sent = {"Content-Type": "application/json"}
        if self.token is not None:
            sent["Authorization"] = self.token()
        sent.update(headers or {})
        async with self.session.post(self.bot_url + "/api/messages", data=json.dumps(activity).encode(),
                                     headers=sent) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text

    def _from(self, activity: dict, person: Person) -> None:
        activity["from"] = {"id": person.mri, "name": person.name, "aadObjectId": person.aad}
        activity["serviceUrl"] = self.connector.service_url

    # --- what people do ----------------------------------------------------------------------
    def message(self, text: str, *, user: Person = AMY, channel: Channel | None = None,
                mentions: tuple[Person, ...] = (), thread: str | None = None) -> dict:
        """A message typed to Amends: in the person's 1:1 chat, or in a channel (with @Amends first),
        as a new post or, with `thread`, as a reply in that post's thread."""
        message_id = str(next(self._ids))
        if channel is None:
            activity = fixture("teams_message_personal.json")
            activity["conversation"]["id"] = personal_conversation(user)
            activity["text"] = text
        else:
            activity = fixture("teams_message_channel.json")
            activity["conversation"]["id"] = f"{channel.id};messageid={thread or message_id}"
            activity["channelData"].update(teamsChannelId=channel.id, channel={"id": channel.id, "name": channel.name})
            activity["text"] = f"<at>Amends</at> {text}\n"
            activity["attachments"][0]["content"] = (
                '<p><span itemtype="http://schema.skype.com/Mention" itemscope="" itemid="0">Amends</span>'
                f"&nbsp;{html.escape(text)}</p>")
        activity["id"] = message_id
        for person in mentions:  # `@Ben Carter` in the text, and its entity, as Teams writes them
            markup = f"<at>{person.name}</at>"
            activity["text"] = activity["text"].replace(f"@{person.name}", markup)
            activity["entities"].insert(0, {"mentioned": {"id": person.mri, "name": person.name},
                                            "text": markup, "type": "mention"})
        self._from(activity, user)
        return activity

    async def say(self, text: str, **kwargs) -> tuple[int, object]:
        return await self.post(self.message(text, **kwargs))

    def tap(self, card: Call, verb: str, inputs: dict | None = None, *, user: Person = AMY,
            fallback: bool = False) -> dict:
        """A tap on the button `verb` of a card the bot sent: Action.Execute's invoke, or (fallback=True)
        the Action.Submit message an older client sends instead."""
        content = card.card
        action = next(a for a in content.get("actions", []) if a.get("verb") == verb)
        data = copy.deepcopy(action["data"])
        if action.get("associatedInputs", "auto").lower() != "none":
            for element in content["body"]:
                if element["type"].startswith("Input."):
                    initial = element.get("value", "")
                    if element["id"] == "root_cause" and not initial:  # closing: flows pick the first cause
                        initial = element["choices"][0]["value"]
                    data[element["id"]] = str((inputs or {}).get(element["id"], initial))
        card_id = card.id if card.method == "POST" else card.activity_id
        if fallback:
            activity = fixture("teams_submit_action.json")
            activity["id"] = str(next(self._ids))
            activity["value"] = data
        else:
            activity = fixture("teams_invoke_action.json")
            activity["id"] = f"f:{uuid.uuid4()}"
            activity["value"]["action"] = {"type": "Action.Execute", "title": action["title"], "verb": verb,
                                           "data": data}
        activity["replyToId"] = card_id
        activity["conversation"] = _conversation_of(card)
        self._from(activity, user)
        return activity

    async def execute(self, card: Call, verb: str, inputs: dict | None = None, **kwargs) -> tuple[int, dict]:
        return await self.post(self.tap(card, verb, inputs, **kwargs))

    async def submit(self, card: Call, verb: str, inputs: dict | None = None, **kwargs) -> tuple[int, object]:
        return await self.post(self.tap(card, verb, inputs, fallback=True, **kwargs))

    def installed(self, *, personal: Person | None = None) -> dict:
        """The conversationUpdate Teams sends when Amends is added to a team (or, with `personal`, to someone's 1:1 chat)."""
        if personal is None:
            activity = fixture("teams_conversation_update_team.json")
        else:
            activity = fixture("teams_conversation_update_personal.json")
            activity["conversation"]["id"] = personal_conversation(personal)
            activity["membersAdded"][0] = {"id": personal.mri, "aadObjectId": personal.aad}
            self._from(activity, personal)
        activity["serviceUrl"] = self.connector.service_url
        return activity


def _conversation_of(card: Call) -> dict:
    """The conversation a tap on this card comes from (where the card is)."""
    conversation = card.conversation
    if conversation.startswith("19:"):
        return {"isGroup": True, "conversationType": "channel", "tenantId": TENANT, "id": conversation}
    return {"conversationType": "personal", "tenantId": TENANT, "id": conversation}


# --- what the bot posted ---------------------------------------------------------------------

def is_step(call: Call, case_id: str, step: Step) -> bool:
    return (call.method == "POST" and call.status == 201 and call.card is not None
            and call.card["fallbackText"] == f"{case_id} · {step_title(step)}")


async def wait_step(connector: FakeConnector, step: Step, *, case_id: str = "R-1001", count: int = 1) -> Call:
    """The card of `step` once the bot has posted it (the `count`-th time)."""
    return (await connector.wait_for(lambda c: is_step(c, case_id, step), count=count))[count - 1]


async def wait_answer(connector: FakeConnector, words: str, *, count: int = 1) -> Call:
    """A message the bot sent whose card shows `words`."""
    return (await connector.wait_for(lambda c: c.method == "POST" and words in c.shown, count=count))[count - 1]


async def open_case(teams: TeamsDriver, text: str = "cold soup, table 4, waited 40 min", *,
                    case_id: str = "R-1001", **where) -> Call:
    """Type `recover <text>`; return the case card once the first step follows it."""
    status, _ = await teams.say(f"recover {text}", **where)
    assert status == 201
    await wait_step(teams.connector, Step.APOLOGISE, case_id=case_id)
    return next(c for c in teams.connector.posts() if c.card["fallbackText"].startswith(f"{case_id} · ")
                and c.card["fallbackText"].endswith(" · open"))


async def walk_to(teams: TeamsDriver, step: Step, *, case_id: str = "R-1001", **who) -> Call:
    """Tap Done on every step before `step`; return `step`'s card."""
    for earlier in CHECKLIST[: CHECKLIST.index(step)]:
        assert earlier in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX), "walk_to only ticks the first three"
        status, _ = await teams.execute(await wait_step(teams.connector, earlier, case_id=case_id), "step_done", **who)
        assert status == 200
    return await wait_step(teams.connector, step, case_id=case_id)


def answer_of(body: dict) -> str:
    """The sentence of an Action.Execute answer that only the tapper sees."""
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.activity.message", body
    return body["value"]


def teams_settings(**overrides) -> Settings:
    values = dict(db=":memory:", admins=ADMINS, host="127.0.0.1", port=0)
    values.update(overrides)
    return Settings(**values)
