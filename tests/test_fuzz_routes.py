"""Bounded input on both routes: oversized bodies get 413 before parsing; malformed ones get a 4xx, never
a 500, and change nothing. A seeded fuzz pass mutates recorded payloads (signed, so they get past the
signature check to the code behind it) and checks every answer and the store."""

import copy
import json
import random
from urllib.parse import urlencode

import pytest

from app import SLACK
from tests.doubles.slack_client import fixture_form, fixture_json
from tests.doubles.teams_driver import fixture as teams_fixture

pytest_plugins = ("tests.doubles.teams_fixtures",)

SEED = 8
ROUNDS = 150  # per route
OVER = 1024 * 1024 + 1


def mutate(value, rng: random.Random, depth: int = 0):
    """A copy of a JSON value with one thing broken: a key dropped, a value of the wrong type, a string cut."""
    if isinstance(value, dict) and value and depth < 6:
        value = dict(value)
        key = rng.choice(list(value))
        roll = rng.random()
        if roll < 0.3:
            del value[key]
        elif roll < 0.6:
            value[key] = rng.choice([None, 0, -1, 1.5, True, "", [], {}, "x" * 5000, "💥\u0000<!channel>", [None]])
        else:
            value[key] = mutate(value[key], rng, depth + 1)
        return value
    if isinstance(value, list) and value and depth < 6:
        value = list(value)
        value[rng.randrange(len(value))] = mutate(value[rng.randrange(len(value))], rng, depth + 1)
        return value
    if isinstance(value, str) and value:
        return value[: rng.randrange(len(value))]
    return rng.choice([None, {}, [], "", 7])


def slack_bodies(rng: random.Random) -> list[tuple[str, str]]:
    """(content type, body) pairs, every one broken somehow; none could open a case or record a gift."""
    command = {**fixture_form("slash_command.urlencoded"), "text": "help"}
    click = fixture_json("block_actions.json")
    submit = fixture_json("view_submission.json")
    for payload in (click, submit):
        payload["team"]["id"] = "T1"
    bodies = []
    for _ in range(ROUNDS):
        kind = rng.random()
        if kind < 0.25:
            form = mutate(command, rng)
            bodies.append(("application/x-www-form-urlencoded",
                           urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in (form or {}).items()}
                                     if isinstance(form, dict) else {"x": json.dumps(form)})))
        elif kind < 0.75:
            payload = mutate(copy.deepcopy(rng.choice([click, submit])), rng)
            text = json.dumps(payload)
            if rng.random() < 0.2:
                text = text[: rng.randrange(1, len(text))]  # cut mid-JSON
            bodies.append(("application/x-www-form-urlencoded", urlencode({"payload": text})))
        elif kind < 0.9:
            bodies.append((rng.choice(["application/json", "text/plain", "application/octet-stream", ""]),
                           json.dumps(mutate(copy.deepcopy(click), rng))))
        else:
            bodies.append(("application/x-www-form-urlencoded",
                           bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))).decode("latin-1")))
    return bodies


async def what_matters(store, people=("U1", "U2", "UADMIN")) -> tuple:
    """The store's records (not its bookkeeping: delivery keys, platform addresses)."""
    return (await store.ledger(workspace="T1"), await store.roles(workspace="T1"),
            await store.recovery_channel(workspace="T1"),
            [await store.open_cases(workspace="T1", owner=p) for p in people], await store.owed_outbox())


async def test_slack_bodies_over_the_limit_get_413_before_parsing(slack, bot, http):
    body = "payload=" + "x" * OVER
    async with http.post(bot.url + "/slack/events", data=body.encode(), headers=slack.signed_headers(body)) as resp:
        assert resp.status == 413


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", "payload=not-json"),
    ("application/x-www-form-urlencoded", "payload=null"),
    ("application/x-www-form-urlencoded", "payload=%5B1%5D"),
    ("application/x-www-form-urlencoded", 'payload={"type":"view_submission","view":{"callback_id":"give"}}'),
    ("application/x-www-form-urlencoded", ""),
    ("application/json", "{"),
    ("text/plain", "hello"),
])
async def test_malformed_signed_slack_bodies_get_a_4xx_and_change_nothing(slack, bot, http, content_type, body):
    before = await what_matters(bot.recovery.store)
    headers = {**slack.signed_headers(body), "Content-Type": content_type}
    async with http.post(bot.url + "/slack/events", data=body.encode(), headers=headers) as resp:
        assert 400 <= resp.status < 500, (resp.status, await resp.text())
    assert await what_matters(bot.recovery.store) == before


async def test_fuzzing_slack_events_never_gets_a_500_nor_changes_the_store(slack, bot, http):
    rng = random.Random(SEED)
    before = await what_matters(bot.recovery.store)
    statuses = {}
    for content_type, body in slack_bodies(rng):
        headers = slack.signed_headers(body)
        if content_type:
            headers["Content-Type"] = content_type
        else:
            headers.pop("Content-Type")
        async with http.post(bot.url + "/slack/events", data=body.encode("latin-1" if "\x00" in body else "utf-8",
                                                                            errors="replace"), headers=headers) as resp:
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status < 500, (resp.status, body[:300])
    await bot.app[SLACK].background.drain(timeout=10)
    assert await what_matters(bot.recovery.store) == before
    assert sum(statuses.values()) == ROUNDS and any(400 <= s < 500 for s in statuses), statuses
    print(f"\n/slack/events fuzz, seed {SEED}: {ROUNDS} requests, answers {dict(sorted(statuses.items()))}")


async def test_teams_bodies_over_the_limit_get_413(teams_bot, http):
    async with http.post(teams_bot.url + "/api/messages", data=b"{" + b" " * OVER + b"}",
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 413


async def test_fuzzing_api_messages_never_gets_a_500_nor_changes_the_store(teams_bot, connector, http):
    rng = random.Random(SEED)
    tenant = teams_fixture("teams_message_personal.json")["conversation"].get("tenantId") or "T1"
    seeds = []
    for name in ("teams_message_personal.json", "teams_message_channel.json", "teams_invoke_action.json",
                 "teams_submit_action.json", "teams_conversation_update_personal.json"):
        activity = teams_fixture(name)
        activity["serviceUrl"] = connector.service_url
        if activity.get("type") == "message" and isinstance(activity.get("text"), str):
            activity["text"] = "recover help"  # read-only, whatever survives the mutation
        seeds.append(activity)
    store = teams_bot.recovery.store
    before = [await store.ledger(workspace=tenant), await store.owed_outbox()]
    statuses: dict[int, int] = {}
    for _ in range(ROUNDS):
        body = json.dumps(mutate(copy.deepcopy(rng.choice(seeds)), rng))
        if rng.random() < 0.15:
            body = body[: rng.randrange(1, len(body))]
        content_type = "application/json" if rng.random() < 0.9 else rng.choice(["text/plain", "", "application/xml"])
        headers = {"Content-Type": content_type} if content_type else {}
        async with http.post(teams_bot.url + "/api/messages", data=body.encode(), headers=headers) as resp:
            assert resp.status < 500, (resp.status, body[:300], await resp.text())
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
    print(f"\n/api/messages fuzz, seed {SEED}: {ROUNDS} requests, answers {dict(sorted(statuses.items()))}")
    assert [await store.ledger(workspace=tenant), await store.owed_outbox()] == before
    connector.problems.clear()  # a mangled activity may ask the connector for nonsense; it refused it
