"""SIGKILL the bot (`python app.py`) while many compensations are in flight through the real Slack entry
point; restart it: every compensation whose success reached a person is in the ledger exactly once,
the store opens cleanly, and a person who never got an answer and submits again is recorded once."""

import asyncio
import os
import signal
import uuid
from collections import Counter

import aiohttp
import pytest

from bot.checklist import Step
from bot.store.tiny import TinyStore
from tests.conftest import SIGNING_SECRET
from tests.doubles.slack_api import BOT_TOKEN, FakeSlack
from tests.doubles.slack_client import SlackDriver
from tests.flows import open_case, walk_to
from tests.test_app_process import BotProcess

CASES = 16
FIGURES: Counter = Counter()  # summed over the kill points, printed at the end (docs/reliability.md)


async def give_form(slack: SlackDriver, fake: FakeSlack, person: str):
    """Open a case for `person`, walk it to compensate and open the give form; the form's views.open call."""
    card = await open_case(slack, fake, f"cold soup for {person}", user=person, user_name=person.lower(),
                           channel=f"CFLOOR{person}")  # a channel each: cases are found by where they went
    compensate = await walk_to(slack, fake, card, Step.COMPENSATE, user=person)
    trigger = f"give-{uuid.uuid4().hex}"
    await slack.post(slack.click_body(compensate, "give", trigger_id=trigger, user=person))
    [view] = await fake.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger, timeout=10)
    return view


async def submit_all(slack: SlackDriver, forms: dict, *, kill_after: int, process) -> dict[str, str]:
    """Submit every form at once; SIGKILL the bot when `kill_after` answers came back.
    What each person saw: "recorded" (200, empty body), "refused" (200 with errors), or "lost" (no answer)."""
    seen: dict[str, str] = {}
    answered = 0

    async def one(person: str, view) -> None:
        nonlocal answered
        body = slack.submit_body(view, {"amount": "5"}, user=person)
        try:
            status, text = await slack.post(body)
        except (aiohttp.ClientError, asyncio.TimeoutError):
            seen[person] = "lost"
            return
        seen[person] = "recorded" if (status, text) == (200, "") else f"answered {status} {text[:80]}"
        answered += 1
        if answered == kill_after and process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)

    await asyncio.wait_for(asyncio.gather(*(one(person, view) for person, view in forms.items())), 30)
    return seen


@pytest.mark.parametrize("kill_after", [1, 5, 11])
async def test_a_sigkill_mid_load_loses_no_acknowledged_compensation_and_records_none_twice(tmp_path, kill_after):
    fake = await FakeSlack().start()
    people = [f"U{n:02d}" for n in range(1, CASES + 1)]
    for person in people:
        fake.add_user(person, person.lower())
    db = tmp_path / "amends.json"
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake.api_url,
           "AMENDS_DB": str(db)}
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        bot = await BotProcess.start(env, tmp_path)
        try:
            slack = SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake, session=http)
            views = await asyncio.gather(*(give_form(slack, fake, person) for person in people))
            forms = dict(zip(people, views))
            seen = await submit_all(slack, forms, kill_after=kill_after, process=bot.process)
            await asyncio.wait_for(bot.process.wait(), 10)
            assert bot.process.returncode == -signal.SIGKILL
        finally:
            await bot.stop()
        recorded = {person for person, what in seen.items() if what == "recorded"}
        assert len(recorded) >= kill_after and all(what in ("recorded", "lost") for what in seen.values()), seen

        # Restart on the same files: it opens cleanly; whoever got no answer submits again.
        again = await BotProcess.start(env, tmp_path)
        try:
            slack.bot_url = again.url
            retried = {}
            for person in (p for p, what in seen.items() if what == "lost"):
                retried[person] = await slack.post(slack.submit_body(forms[person], {"amount": "5"}, user=person))
        finally:
            await again.stop()
        assert "Traceback" not in "".join(again.log)
    await fake.stop()

    store = TinyStore(path=str(db))
    try:
        ledger = await store.ledger(workspace="T1")
    finally:
        await store.close()
    per_case = Counter(entry.employee for entry in ledger)
    assert recorded <= set(per_case), f"acknowledged but not in the ledger: {recorded - set(per_case)}"
    assert set(per_case) == set(people) and set(per_case.values()) == {1}, per_case  # each exactly once
    for person, (status, text) in retried.items():  # the retry was recorded, or refused as already done
        assert status == 200 and (text == "" or "errors" in text), (person, status, text)
    FIGURES.update(requests=len(people) + len(retried), kills=1, acknowledged=len(recorded),
                   unanswered=len(people) - len(recorded),
                   unanswered_but_recorded=sum(1 for _, text in retried.values() if "errors" in text),
                   in_ledger_once=sum(1 for n in per_case.values() if n == 1))
    print(f"\nkill after {kill_after}: {dict(FIGURES)}")
