"""Drives the bot the way Slack does: Slack-shaped payloads (from tests/fixtures), signed as Slack signs them.

Each helper builds its payload from a recorded example, changes only what the test names,
signs the raw body with the signing secret (or a forged one), and POSTs it to /slack/events.
"""

import copy
import itertools
import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from tests.doubles.slack_api import Call, FakeSlack

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def fixture_form(name: str) -> dict:
    return dict(parse_qsl((FIXTURES / name).read_text().strip()))


DEFAULT_CAUSE = "root_cause"  # block id of the closing step's cause: a click picks its first option unless told


def message_state(message: Call, values: dict | None) -> dict:
    """The state.values Slack sends with a click on a message holding input blocks: a string is a text
    input's value or a select's option value, None is nothing picked; unnamed inputs keep their initial
    value (the root cause: its first option, so flows that close a case need not say which)."""
    state = {}
    for block in message.args.get("blocks") or []:
        if block["type"] != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        named = values is not None and block_id in values
        typed = values.get(block_id) if named else None
        if element["type"] == "static_select":
            if named:
                chosen = None if typed is None else {"text": {"type": "plain_text", "text": typed}, "value": typed}
            else:
                chosen = element.get("initial_option") or (element["options"][0] if block_id == DEFAULT_CAUSE else None)
            state[block_id] = {element["action_id"]: {"type": "static_select", "selected_option": chosen}}
        else:
            state[block_id] = {element["action_id"]: {"type": element["type"],
                                                      "value": typed if named else element.get("initial_value")}}
    return state


class SlackDriver:
    def __init__(self, *, bot_url: str, signing_secret: str, fake: FakeSlack, session: aiohttp.ClientSession,
                 team: str = "T1"):
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.fake = fake
        self.session = session
        self.team = team
        self._ids = itertools.count(1)

    # --- the wire ----------------------------------------------------------------------------
    def signed_headers(self, body: str, *, timestamp: int | None = None, secret: str | None = None) -> dict:
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = SignatureVerifier(secret or self.signing_secret).generate_signature(
            timestamp=str(timestamp), body=body)
        return {"Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}

    async def post(self, body: str, *, headers: dict | None = None, **sign) -> tuple[int, str]:
        all_headers = {**self.signed_headers(body, **sign), **(headers or {})}
        async with self.session.post(self.bot_url + "/slack/events", data=body.encode(), headers=all_headers) as resp:
            return resp.status, await resp.text()

    # --- what people do ----------------------------------------------------------------------
    def command_body(self, text: str, *, user: str = "U1", user_name: str = "amy", channel: str = "C1",
                     trigger_id: str | None = None) -> str:
        form = fixture_form("slash_command.urlencoded")
        n = next(self._ids)
        form.update(team_id=self.team, user_id=user, user_name=user_name, channel_id=channel, text=text,
                    response_url=self.fake.response_url(f"command-{n}"),
                    trigger_id=trigger_id or f"trigger-command-{n}-{uuid.uuid4().hex[:12]}")
        return urlencode(form)

    async def command(self, text: str, **kwargs) -> tuple[int, str]:
        sign = {k: kwargs.pop(k) for k in ("timestamp", "secret", "headers") if k in kwargs}
        return await self.post(self.command_body(text, **kwargs), **sign)

    def click_body(self, message: Call, action_id: str, *, user: str = "U1", user_name: str = "amy",
                   trigger_id: str | None = None, values: dict | None = None) -> str:
        """A click on the button `action_id` of a message the bot posted (found in the fake's records).
        Slack sends the message's inputs with it (message_state: `values` by block id, else defaults)."""
        payload = fixture_json("block_actions.json")
        button = next(element for block in message.args["blocks"] if block["type"] == "actions"
                      for element in block["elements"] if element.get("action_id") == action_id)
        n = next(self._ids)
        channel, ts = message.answer["channel"], message.answer["ts"]
        payload["user"] = {"id": user, "username": user_name, "name": user_name, "team_id": self.team}
        payload["team"]["id"] = self.team
        payload["container"].update(message_ts=ts, channel_id=channel, thread_ts=message.args.get("thread_ts", ts))
        payload["channel"] = {"id": channel, "name": "floor"}
        payload["message"] = {"type": "message", "user": "UBOT", "ts": ts, "text": message.args.get("text", ""),
                              "blocks": message.args["blocks"]}
        payload["trigger_id"] = trigger_id or f"trigger-click-{n}-{uuid.uuid4().hex[:12]}"
        payload["response_url"] = self.fake.response_url(f"click-{n}")
        # Like Slack's, unique per click: the bot's dedupe keys on it.
        payload["actions"] = [{**button, "block_id": "b", "action_ts": f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"}]
        payload["state"] = {"values": message_state(message, values)}
        return urlencode({"payload": json.dumps(payload)})

    async def click(self, message: Call, action_id: str, **kwargs) -> tuple[int, str]:
        return await self.post(self.click_body(message, action_id, **kwargs))

    async def event(self, event: dict, *, fixture: str = "app_home_opened.json", event_id: str | None = None,
                    **sign) -> tuple[int, str]:
        """An Events API delivery (event_callback, JSON, signed), built from a recorded one: `event` is merged
        into its inner event (e.g. {"user": "U2"}); a fresh event_id unless `event_id` (a redelivery) is given."""
        envelope = fixture_json(fixture)
        envelope["team_id"] = self.team
        envelope["authorizations"][0]["team_id"] = self.team
        envelope["event"].update(event)
        envelope["event_id"] = event_id or f"Ev{uuid.uuid4().hex[:12].upper()}"
        envelope["event_time"] = int(time.time())
        body = json.dumps(envelope)
        return await self.post(body, headers={"Content-Type": "application/json", **sign.pop("headers", {})}, **sign)

    def click_view_body(self, published: Call, action_id: str, *, user: str = "U1", user_name: str = "amy",
                        trigger_id: str | None = None) -> str:
        """A click on the button `action_id` of a view the bot published (the App Home: no channel, no response_url)."""
        payload = fixture_json("block_actions_home.json")
        view = published.answer.get("view") or published.args["view"]
        button = next(element for block in view["blocks"] if block["type"] == "actions"
                      for element in block["elements"] if element.get("action_id") == action_id)
        n = next(self._ids)
        payload["user"] = {"id": user, "username": user_name, "name": user_name, "team_id": self.team}
        payload["team"]["id"] = self.team
        payload["view"].update(view)
        payload["container"]["view_id"] = payload["view"]["id"]
        payload["trigger_id"] = trigger_id or f"trigger-home-{n}-{uuid.uuid4().hex[:12]}"
        payload["actions"] = [{**button, "block_id": "b", "action_ts": f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"}]
        return urlencode({"payload": json.dumps(payload)})

    async def click_view(self, published: Call, action_id: str, **kwargs) -> tuple[int, str]:
        return await self.post(self.click_view_body(published, action_id, **kwargs))

    def submit_body(self, opened: Call, values: dict[str, object], *, user: str = "U1", user_name: str = "amy") -> str:
        """Submit a modal the bot opened (a recorded views.open), with typed values by block id.
        A string is a text input's value; a dict is merged as is (e.g. selected_option, selected_date)."""
        payload = fixture_json("view_submission.json")
        view = copy.deepcopy(opened.answer["view"])
        state = {}
        for block in view["blocks"]:
            if block["type"] != "input":
                continue
            element = block["element"]
            typed = values.get(block["block_id"])
            if element["type"] in ("static_select", "radio_buttons"):  # Slack sends the initial option if untouched
                chosen = typed if isinstance(typed, dict) else {"selected_option": element.get("initial_option")}
                state[block["block_id"]] = {element["action_id"]: {"type": element["type"], **chosen}}
            elif element["type"] == "datepicker":
                picked = typed if typed is not None else element.get("initial_date")
                state[block["block_id"]] = {element["action_id"]: {"type": "datepicker", "selected_date": picked}}
            elif element["type"] != "plain_text_input":  # users_select, conversations_select, checkboxes: as given
                chosen = typed if isinstance(typed, dict) else {}
                state[block["block_id"]] = {element["action_id"]: {"type": element["type"], **chosen}}
            else:
                state[block["block_id"]] = {element["action_id"]: {"type": "plain_text_input", "value": typed}}
        payload["user"] = {"id": user, "username": user_name, "name": user_name, "team_id": self.team}
        payload["team"]["id"] = self.team
        payload["view"].update(view)
        payload["view"]["state"] = {"values": state}
        return urlencode({"payload": json.dumps(payload)})

    async def submit(self, opened: Call, values: dict[str, object], **kwargs) -> tuple[int, str]:
        return await self.post(self.submit_body(opened, values, **kwargs))
