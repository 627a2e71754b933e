"""Socket Mode: the same listeners over a websocket the bot opens, with acks sent back as envelopes."""

import asyncio
import json
import logging
from urllib.parse import parse_qsl

import pytest

from app import SLACK, SOCKET
from bot.checklist import Step
from bot.store import open_store
from tests.conftest import RunningBot, bot_settings
from tests.doubles.slack_api import APP_TOKEN, BOT_TOKEN
from tests.doubles.slack_client import SlackDriver
from tests.doubles.slack_socket import SocketModeDouble
from tests.flows import wait_step


@pytest.fixture
async def socket_double(fake_slack):
    double = await SocketModeDouble().start()
    fake_slack.socket_url = double.url
    yield double
    await double.stop()
    assert double.problems == []


@pytest.fixture
async def socket_bot(fake_slack, socket_double, clock, tmp_path):
    # Socket Mode only: no signing secret, no public URL.
    settings = bot_settings(fake_slack, slack_app_token=APP_TOKEN, slack_signing_secret="")
    running = await RunningBot.start(settings, store=open_store(str(tmp_path / "amends.json")), clock=clock)
    await asyncio.wait_for(running.app[SOCKET].connected.wait(), 5)
    yield running
    await running.stop()


def payload_of(body: str) -> dict:
    """The JSON an HTTP interactivity request carries in its form; Socket Mode sends it as is."""
    return json.loads(dict(parse_qsl(body))["payload"])


async def test_it_connects_with_the_app_token_and_healthz_says_so(socket_bot, socket_double, fake_slack, http):
    [opened] = fake_slack.of("apps.connections.open")
    assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert len(socket_double.connections) == 1
    async with http.get(socket_bot.url + "/healthz") as resp:
        assert await resp.json() == {"ok": True, "slack": True, "socket_mode": True}
    async with http.post(socket_bot.url + "/slack/events", data=b"x") as resp:  # nothing could check a signature
        assert resp.status == 503 and "SLACK_SIGNING_SECRET" in await resp.text()


async def test_a_case_runs_over_the_socket_command_click_and_form(socket_bot, socket_double, fake_slack, http):
    # Only the driver's payload builders are used: nothing is posted over HTTP.
    slack = SlackDriver(bot_url=socket_bot.url, signing_secret="", fake=fake_slack, session=http)

    command = dict(parse_qsl(slack.command_body("cold soup, table 4")))
    ack = await socket_double.send("slash_commands", command, accepts_response_payload=True)
    assert ack == {"envelope_id": "envelope-1"}  # acked at once; the card follows from the background
    card = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "thread_ts" not in c.args))[0]
    apologise = await wait_step(fake_slack, card, Step.APOLOGISE)

    click = payload_of(slack.click_body(apologise, "step_done"))
    ack = await socket_double.send("interactive", click, accepts_response_payload=False)
    assert ack == {"envelope_id": "envelope-2"}
    await wait_step(fake_slack, card, Step.EMPATHISE)
    case = await socket_bot.recovery.case(workspace="T1", case_id="R-1001")
    assert case.current_step == Step.EMPATHISE

    # A form: a refusal travels back in the ack's payload, as over HTTP; a good one closes the form.
    command = dict(parse_qsl(slack.command_body("", trigger_id="trigger-form")))
    await socket_double.send("slash_commands", command, accepts_response_payload=True)
    [form] = await fake_slack.wait_for("views.open", where=lambda c: c.args["trigger_id"] == "trigger-form")
    ack = await socket_double.send("interactive", payload_of(slack.submit_body(form, {"what": "  "})),
                                   accepts_response_payload=True)
    assert ack["payload"]["response_action"] == "errors" and "what" in ack["payload"]["errors"]
    ack = await socket_double.send("interactive", payload_of(slack.submit_body(form, {"what": "lost booking"})),
                                   accepts_response_payload=True)
    assert ack == {"envelope_id": ack["envelope_id"]} and "payload" not in ack
    second = await fake_slack.wait_for("chat.postMessage", where=lambda c: "lost booking" in c.args.get("text", "")
                                       and "thread_ts" not in c.args)
    assert second and await socket_bot.recovery.case(workspace="T1", case_id="R-1002")


async def test_a_repeated_envelope_is_acked_and_its_work_done_once(socket_bot, socket_double, fake_slack, http):
    slack = SlackDriver(bot_url=socket_bot.url, signing_secret="", fake=fake_slack, session=http)
    command = dict(parse_qsl(slack.command_body("cold soup", trigger_id="trigger-once")))
    first = await socket_double.send("slash_commands", command, accepts_response_payload=True)
    again = await socket_double.send("slash_commands", command, accepts_response_payload=True)
    assert first["envelope_id"] != again["envelope_id"]
    await socket_bot.app[SLACK].background.drain()  # both deliveries' work has run
    cards = [c for c in fake_slack.of("chat.postMessage") if "thread_ts" not in c.args]
    assert len(cards) == 1 and await socket_bot.recovery.store.get_case(workspace="T1", case_id="R-1002") is None


async def test_a_refused_app_token_turns_socket_mode_off_with_one_sentence(fake_slack, socket_double, clock, caplog):
    settings = bot_settings(fake_slack, slack_app_token="xapp-not-this-one", slack_signing_secret="")
    with caplog.at_level(logging.ERROR):
        running = await RunningBot.start(settings, store=open_store(":memory:"), clock=clock)
        try:
            await asyncio.wait_for(running.app[SOCKET]._task, 5)
            assert running.app[SOCKET].refused == "invalid_auth" and not running.app[SOCKET].connected.is_set()
            assert socket_double.connections == []
        finally:
            await running.stop()
    [line] = [r.getMessage() for r in caplog.records if "Socket Mode is off" in r.getMessage()]
    assert "invalid_auth" in line and "connections:write" in line and "xapp-not-this-one" not in line


async def test_python_app_py_in_socket_mode_serves_slack_over_the_socket_and_healthz_over_http(
        fake_slack, socket_double, http, tmp_path):
    from tests.test_app_process import BotProcess

    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": fake_slack.api_url,
           "AMENDS_DB": str(tmp_path / "amends.json")}
    bot = await BotProcess.start(env, tmp_path)
    try:
        await asyncio.wait_for(socket_double.connected.wait(), 20)
        slack = SlackDriver(bot_url=bot.url, signing_secret="", fake=fake_slack, session=http)
        ack = await socket_double.send("slash_commands", dict(parse_qsl(slack.command_body("cold soup"))),
                                       accepts_response_payload=True)
        assert "payload" not in ack
        card = (await fake_slack.wait_for("chat.postMessage", where=lambda c: "thread_ts" not in c.args))[0]
        await wait_step(fake_slack, card, Step.APOLOGISE)
        async with http.get(bot.url + "/healthz") as resp:
            assert await resp.json() == {"ok": True, "slack": True, "socket_mode": True}
    finally:
        await bot.stop()
    assert bot.process.returncode == 0, "".join(bot.log)
    await asyncio.wait_for(socket_double.disconnected.wait(), 10)  # it closed its websocket on the way out
    assert socket_double.connections == []


async def test_many_workspaces_over_the_socket_and_an_uninstall_event_envelope(
        fake_slack, socket_double, clock, tmp_path, http):
    from handlers.slack.oauth import installation_key
    from tests.doubles.slack_install import event_body, install, oauth_settings

    db = str(tmp_path / "amends.json")
    settings = oauth_settings(fake_slack, signing_secret="", db=db, slack_app_token=APP_TOKEN)
    running = await RunningBot.start(settings, store=open_store(db), clock=clock)
    try:
        await asyncio.wait_for(running.app[SOCKET].connected.wait(), 5)
        await install(http, running.url, fake_slack, team="T1", token="xoxb-socket-one")
        slack = SlackDriver(bot_url=running.url, signing_secret="", fake=fake_slack, session=http)
        await socket_double.send("slash_commands", dict(parse_qsl(slack.command_body("cold soup"))),
                                 accepts_response_payload=True)
        [card] = await fake_slack.wait_for("chat.postMessage", where=lambda c: "thread_ts" not in c.args)
        assert card.headers["Authorization"] == "Bearer xoxb-socket-one"

        event = json.loads(event_body("T1", {"type": "app_uninstalled"}, event_id="Ev9"))
        ack = await socket_double.send("events_api", event, accepts_response_payload=False,
                                       retry_attempt=0, retry_reason="")
        assert ack == {"envelope_id": ack["envelope_id"]}
        record = await running.recovery.store.reference(workspace="T1",
                                                        key=installation_key(enterprise_id=None, team_id="T1"))
        assert record["sealed"] is None  # done before the ack: process_before_response
    finally:
        await running.stop()
