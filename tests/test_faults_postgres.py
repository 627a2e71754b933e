"""Fault 6 of issue 8: the database goes away in the middle of a load of compensations, and comes back.

The bot runs on PostgreSQL through a TCP proxy on 127.0.0.1 (tests/test_postgres.py): stopping the
proxy cuts every open connection and refuses new ones, which is what a database restart looks like
from the bot's side, without touching the machine's real server. Give forms are submitted through the
real Slack entry point, signed. Whatever the moment: every request is answered, every gift whose
success reached the person is in the ledger exactly once, nothing refused is recorded, and the bot
serves again by itself once the database is back.
"""

import asyncio
from decimal import Decimal

from bot.checklist import Step
from bot.store.postgres import UNCONFIRMED, UNREACHABLE, PostgresStore
from tests.conftest import SIGNING_SECRET, RunningBot, bot_settings
from tests.doubles.slack_client import SlackDriver
from tests.test_postgres import Proxy, fresh_schema, rows
from tests.test_postgres_processes import _answer, _give_form

WORKSPACE = "T1"
CASES = 36


async def _cases_at_compensate(recovery, count: int):
    """U1, allowed far more than this test gives, with `count` cases waiting at "compensate"."""
    await recovery.set_limit(workspace=WORKSPACE, role="server", limit="25", budget="100000/week")
    await recovery.assign_role(workspace=WORKSPACE, person="U1", role="server")
    cases = []
    for n in range(count):
        case = await recovery.open_case(workspace=WORKSPACE, owner="U1", owner_name="Amy", what_happened=f"soup {n}")
        for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
            case = await recovery.complete_step(workspace=WORKSPACE, case_id=case.id, actor="U1", step=step)
        cases.append(case)
    return cases


async def test_the_database_going_away_mid_load_loses_nothing_acknowledged(fake_slack, clock, http):
    async with fresh_schema() as schema:
        proxy = await Proxy().start()
        store = PostgresStore(url=proxy.url, pool_size=4, schema=schema)
        bot = await RunningBot.start(bot_settings(fake_slack), store=store, clock=clock)
        try:
            slack = SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
            cases = await _cases_at_compensate(bot.recovery, CASES)
            forms = [await _give_form(bot.recovery, case, n) for n, case in enumerate(cases)]
            told: dict[str, str | None] = {}  # case id → None (recorded, the form closed) or the sentence shown
            three_answered = asyncio.Event()

            async def submit(case, form) -> None:
                status, text = await asyncio.wait_for(slack.submit(form, {"amount": "5"}), 30)
                told[case.id] = _answer(status, text)  # every request gets an answer: 200, form closed or a sentence
                if len(told) >= 3:
                    three_answered.set()

            first, outage, after = slice(0, 12), slice(12, 24), slice(24, CASES)
            # 1. Mid-load: the database goes away once three of the first twelve are answered, the rest in flight.
            burst = [asyncio.create_task(submit(c, f)) for c, f in zip(cases[first], forms[first])]
            await asyncio.wait_for(three_answered.wait(), 30)
            await proxy.stop()
            await asyncio.gather(*burst)
            outcomes = [told[c.id] for c in cases[first]]
            assert outcomes.count(None) >= 3 and len(outcomes) == 12  # recorded before the cut; the rest as it fell
            # 2. While it is away: refused with the sentence, nothing recorded.
            await asyncio.gather(*(submit(c, f) for c, f in zip(cases[outage], forms[outage])))
            assert {told[c.id] for c in cases[outage]} == {UNREACHABLE}
            # 3. It comes back (the same address): the bot serves again by itself, no restart, no refusal.
            await proxy.start()
            await asyncio.gather(*(submit(c, f) for c, f in zip(cases[after], forms[after])))
            assert {told[c.id] for c in cases[after]} == {None}

            acknowledged = {case_id for case_id, sentence in told.items() if sentence is None}
            unconfirmed = {case_id for case_id, sentence in told.items() if sentence == UNCONFIRMED}
            assert set(told.values()) <= {None, UNREACHABLE, UNCONFIRMED}, set(told.values())
            ledger = [row["case_id"] for row in await rows(schema, "SELECT case_id FROM ledger ORDER BY seq")]
            assert len(ledger) == len(set(ledger)), "a gift was recorded twice"
            assert acknowledged <= set(ledger), "a gift the person was told about is missing"
            assert set(ledger) <= acknowledged | unconfirmed, "a refused gift was recorded"
            for case in cases:  # each case moved on exactly when its gift is in the ledger
                stored = await store.get_case(workspace=WORKSPACE, case_id=case.id)
                assert (stored.current_step is Step.FOLLOW_UP) == (case.id in ledger), case.id
            total = sum(row["amount"] for row in await rows(schema, "SELECT amount FROM ledger"))
            assert total == Decimal(5) * len(ledger)
        finally:
            await bot.stop()
            await proxy.stop()


async def test_a_database_down_at_start_still_starts_the_bot_and_owes_the_schedules_once_back(
        fake_slack, clock, http, monkeypatch):
    import app as amends
    monkeypatch.setattr(amends, "SCHEDULES_RETRY", (0.05, 0.2))
    async with fresh_schema() as schema:
        proxy = await Proxy().start()
        await proxy.stop()  # the address refuses: the database is down when the bot starts
        store = PostgresStore(url=proxy.url, pool_size=2, schema=schema)
        bot = await RunningBot.start(bot_settings(fake_slack), store=store, clock=clock)
        try:
            async with http.get(f"{bot.url}/healthz") as answer:
                assert answer.status == 200
            retrying = bot.app[amends.SCHEDULES]
            assert not retrying.done()
            await proxy.start()
            await asyncio.wait_for(retrying, 15)  # owed by itself once the database answers, no restart
            assert [m.kind for m in await store.owed_outbox()] == ["retention"]
        finally:
            await bot.stop()
            await proxy.stop()
