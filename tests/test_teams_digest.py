"""The weekly digest and the export in Teams, through /api/messages: the digest as an Adaptive Card 1.5 with
its chart inline (checked by the fake connector as Teams would: schema, 28 KB), sent proactively to the
recovery channel now or when its hour comes; the export as two signed download links, in the admin's 1:1
chat only; bad input answered with a sentence that changes nothing."""

import asyncio
import base64
import csv
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot import digest as digests
from bot.checklist import Step
from tests.doubles.teams_driver import ADA, AMY, FLOOR, RECOVERIES, TeamsDriver, open_case, wait_answer, walk_to
from tests.flows import next_slots

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixtures: connector, teams_bot, teams

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
MONDAY_9 = datetime(2026, 11, 30, 9, tzinfo=timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n"


async def set_recovery_channel(teams: TeamsDriver) -> None:
    status, _ = await teams.say("recover admin channel here", user=ADA, channel=RECOVERIES)
    assert status == 201
    await wait_answer(teams.connector, "Saved. Recovery summaries will be posted in this channel.")


async def a_gift(teams: TeamsDriver, amount: str = "12.50") -> None:
    await open_case(teams, "cold soup, table 4", channel=FLOOR)
    compensate = await walk_to(teams, Step.COMPENSATE)
    status, _ = await teams.execute(compensate, "give", {"kind": "voucher", "amount": amount})
    assert status == 200


def digest_cards(connector) -> list:
    return [c for c in connector.posts(RECOVERIES.id)
            if c.card and c.card["fallbackText"].startswith("Weekly recovery")]


def chart_of(call) -> bytes:
    [image] = [e for e in call.card["body"] if e["type"] == "Image"]
    prefix = "data:image/png;base64,"
    assert image["url"].startswith(prefix)
    return base64.b64decode(image["url"][len(prefix):])


async def test_digest_now_is_a_card_with_its_chart_in_the_recovery_channel(teams, connector, teams_bot):
    await set_recovery_channel(teams)
    await a_gift(teams)
    status, _ = await teams.say("recover admin digest now", user=ADA)
    assert status == 201
    await wait_answer(connector, "Sent the last seven days' digest to Riverside Bistro · Recoveries")
    [card] = digest_cards(connector)
    assert "staff: $12.50 given (1) · limit $25 per case, $100 per person per week" in card.shown
    png = chart_of(card)
    assert png[:8] == PNG and 3_000 < len(png) < 18_000
    assert card.size < 28 * 1024


@pytest.mark.parametrize("text, user, sentence", [
    ("recover admin digest now", AMY, "Only Amends admins"),
    ("recover admin export", AMY, "Only Amends admins"),
    ("recover admin digest monday 24", ADA, "'24' isn't an hour. Use a whole hour from 0 to 23"),
    ("recover admin digest noday 9", ADA, "isn't a day of the week"),
    ("recover admin export 2026-11-20 2026-11-01", ADA, "is before the start"),
    ("recover admin export 2026-02-30", ADA, "2026-02-30 isn't a date on the calendar"),
    ("recover admin export 2026-11-01 2026-11-02 2026-11-03", ADA, "Give at most two dates"),
])
async def test_bad_digest_and_export_commands_get_a_sentence_and_change_nothing(teams, connector, teams_bot, text,
                                                                                 user, sentence):
    await set_recovery_channel(teams)
    before = await teams_bot.recovery.store.owed_outbox()
    status, _ = await teams.say(text, user=user)
    assert status == 201
    await wait_answer(connector, sentence)
    assert await teams_bot.recovery.store.owed_outbox() == before
    assert await digests.schedule_of(teams_bot.recovery.store, workspace=TENANT) == digests.DEFAULT
    assert digest_cards(connector) == [] and not any("Download" in c.shown for c in connector.posts())


async def test_the_scheduled_digest_reaches_the_teams_channel_when_its_hour_comes(teams, connector, teams_bot,
                                                                                 clock):
    outbox = teams_bot.recovery.outbox
    outbox.clock = clock
    await set_recovery_channel(teams)
    await teams.say("recover admin digest monday 9", user=ADA)
    await wait_answer(connector, "the next one Mon 30 Nov at 09:00")
    clock.current = MONDAY_9 + timedelta(seconds=1)
    outbox.wake()
    await connector.wait_for(lambda c: c.method == "POST" and c.conversation == RECOVERIES.id
                             and "Weekly recovery digest" in c.shown)
    [card] = digest_cards(connector)
    assert chart_of(card)[:8] == PNG
    assert await next_slots(outbox, [MONDAY_9 + digests.WEEK]) == [MONDAY_9 + digests.WEEK]


async def test_export_is_two_signed_links_in_the_admin_s_own_chat(teams, connector, teams_bot, http, clock):
    await a_gift(teams)
    status, _ = await teams.say("recover admin export", user=ADA, channel=FLOOR)
    await wait_answer(connector, "Ask for the export in your 1:1 chat with me")
    assert not any("Download" in c.shown for c in connector.posts())

    status, _ = await teams.say("recover admin export 2026-11-01", user=ADA)
    answer = await wait_answer(connector, "Amends export, 2026-11-01 to 2026-11-25")
    urls = {a["title"]: a["url"] for a in answer.card["actions"]}
    assert set(urls) == {"Download cases (CSV)", "Download ledger (CSV)"}
    assert all(url.startswith(teams_bot.url + "/api/export/") for url in urls.values())
    async with http.get(urls["Download ledger (CSV)"]) as got:
        assert got.status == 200 and got.content_type == "text/csv"
        entries = list(csv.DictReader(io.StringIO((await got.read()).decode("utf-8"), newline="")))
    recorded = await teams_bot.recovery.store.ledger(workspace=TENANT)
    assert sum(Decimal(e["amount"]) for e in entries) == sum(e.amount for e in recorded) == Decimal("12.50")
    async with http.get(urls["Download cases (CSV)"]) as got:
        [case] = list(csv.DictReader(io.StringIO((await got.read()).decode("utf-8"), newline="")))
    assert case["case"] == "R-1001" and case["owner_name"] == "Amy Baker"

    clock.advance(minutes=16)  # the links have expired
    for url in urls.values():
        async with http.get(url) as got:
            assert got.status == 403 and "Amy" not in await got.text()


def test_a_busy_week_s_card_still_fits_teams():
    """Sixty roles, long names and causes: the card (chart included, or dropped when it can't fit) stays deliverable."""
    from types import SimpleNamespace

    from handlers.teams.digest import digest_card
    from tests.doubles.bf_connector import card_problems
    until = MONDAY_9
    spend = tuple(digests.RoleSpend(role=f"role-{n:02d}-{'x' * 20}", spent=Decimal(n), gifts=n, limit=Decimal(25),
                                    budget=Decimal(100), period="week") for n in range(60))
    people = tuple(digests.Person(person=f"U{n}", name="Zoë " + "é" * 90, recoveries=9 - n,
                                  median=timedelta(minutes=n + 1), recognitions=n + 1) for n in range(3))
    digest = digests.Digest(workspace=TENANT, since=until - digests.WEEK, until=until, currency="EUR", opened=99,
                            closed=98, spent=Decimal("1770"), spend=spend, median=timedelta(minutes=7),
                            root_causes=tuple((f"cause {n} " + "ü" * 150, 9) for n in range(5)), unrecorded_causes=3,
                            repeat_customers=tuple((f"guest {n} " + "ß" * 180, 2) for n in range(5)),
                            most=people, fastest=people, recognised=people,
                            per_day=tuple(((until - timedelta(days=7 - n)).date(), n) for n in range(7)))
    publisher = SimpleNamespace(recovery=SimpleNamespace(tz=timezone.utc))
    text, card = asyncio.run(digest_card(publisher, digest))
    assert card_problems(card) == []
    assert len(json.dumps({"type": "message", "summary": text, "attachments": [{"content": card}]})) < 28 * 1024
    assert "…and 45 more roles" in json.dumps(card, ensure_ascii=False)


async def test_digest_now_without_a_recovery_channel_says_how_to_set_one(teams, connector, teams_bot):
    status, _ = await teams.say("recover admin digest now", user=ADA)
    assert status == 201
    await wait_answer(connector, "No recovery channel is set, so there is nowhere to send the digest")
    assert digest_cards(connector) == []
    assert [m for m in await teams_bot.recovery.store.owed_outbox() if m.kind == digests.KIND] == []


def test_a_chart_that_cannot_be_drawn_does_not_hold_the_digest_back(monkeypatch):
    from types import SimpleNamespace

    from bot import charts
    from handlers.teams.digest import digest_card

    def broken(digest, *, dpi=100):
        raise RuntimeError("no fonts on this machine")
    monkeypatch.setattr(charts, "draw", broken)
    digest = digests.summarise(workspace=TENANT, since=MONDAY_9 - digests.WEEK, until=MONDAY_9, cases=[], entries=[],
                               roles=[], currency="USD", tz=timezone.utc)
    text, card = asyncio.run(digest_card(SimpleNamespace(recovery=SimpleNamespace(tz=timezone.utc)), digest))
    assert card["fallbackText"].startswith("Weekly recovery digest")
    assert not [e for e in card["body"] if e["type"] == "Image"]
