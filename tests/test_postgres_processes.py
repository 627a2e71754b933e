"""Two bot processes, one PostgreSQL database: budgets, case numbers and dedupe hold across them.

Both are real `python app.py` processes on their own ports, configured only by environment, with
AMENDS_DB naming one database. The test plays Slack: signed requests, fired at both at once.
"""

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from bot.cases import Case, MessageRef
from bot.checklist import Step
from bot.clock import SystemClock
from bot.recovery import Recovery
from bot.store.postgres import PostgresStore
from cards import slack as cards
from tests.conftest import SIGNING_SECRET
from tests.doubles.slack_api import BOT_TOKEN, Call, FakeSlack
from tests.doubles.slack_client import SlackDriver
from tests.flows import step_title
from tests.test_app_process import APP, free_port
from tests.test_postgres import TEST_URL, fresh_schema, rows, url_for

WORKSPACE = "T1"  # the team SlackDriver signs for
CASES = 24  # each submitted to both processes: 48 simultaneous compensations for one person
BUDGET, AMOUNT = 100, 25
DEADLINE = 30.0
# What a person may be told when their gift is refused: the budget is spent, or the other process
# already recorded this very form (a double submit). Anything else (an error reference, "can't
# reach its database") would be a failure to answer properly.
FAIR_REFUSALS = re.compile(r"budget is used up|left in your weekly budget|is already done; nothing changed")


class LoggingBot:
    """`python app.py` in its own process; every line it logs is kept, and a test can await one."""

    def __init__(self, process: asyncio.subprocess.Process, port: int):
        self.process, self.port = process, port
        self.lines: list[str] = []
        self.ended = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, env: dict, cwd: Path) -> "LoggingBot":
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AMENDS_", "Microsoft"))}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(APP), cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**base, "HOST": "127.0.0.1", "PORT": str(port), **env})
        bot = cls(process, port)
        try:
            await bot.wait_for_line("Amends is listening on", timeout=20)
        except BaseException:
            await bot.stop()
            raise
        return bot

    async def _read(self) -> None:
        while line := await self.process.stderr.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace"))
                self._changed.notify_all()
        async with self._changed:
            self.ended = True
            self._changed.notify_all()

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    async def wait_for_line(self, text: str, *, timeout: float) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.ended or self.count(text)), timeout)
            except TimeoutError:
                raise AssertionError(f"no {text!r} in the bot's log within {timeout}s:\n" + "".join(self.lines)) from None
            if not self.count(text):
                raise AssertionError(f"the bot exited before logging {text!r}:\n" + "".join(self.lines))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 10)
        await asyncio.wait_for(self._reader, 5)


async def _cases_at_compensate(store: PostgresStore) -> tuple[Recovery, list[Case]]:
    """U1 in a role with a $25 limit and $100 a week, with cases waiting at "compensate", their cards posted."""
    recovery = Recovery(store=store, clock=SystemClock(), currency="USD", tz=ZoneInfo("UTC"))  # the bots' AMENDS_TZ
    await recovery.set_limit(workspace=WORKSPACE, role="server", limit=str(AMOUNT), budget=f"{BUDGET}/week")
    await recovery.assign_role(workspace=WORKSPACE, person="U1", role="server")
    cases = []
    for n in range(CASES):
        case = await recovery.open_case(workspace=WORKSPACE, owner="U1", owner_name="Amy", what_happened=f"soup {n}")
        for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
            case = await recovery.complete_step(workspace=WORKSPACE, case_id=case.id, actor="U1", step=step)
        cases.append(await recovery.remember_post(workspace=WORKSPACE, case_id=case.id,
                                                  card=MessageRef("C1", f"1700000000.{n + 1:06d}")))
    return recovery, cases


async def _give_form(recovery: Recovery, case: Case, n: int) -> Call:
    """The give form as Slack's views.open would have answered it for this case."""
    view = cards.give_form(case, allowance=await recovery.allowance(workspace=WORKSPACE, person="U1"),
                           catalogue=recovery.catalogue)
    return Call(method="views.open", args={"view": view}, answer={"ok": True, "view": {**view, "id": f"VG{n:04d}"}})


def _compensate_message(recovery: Recovery, case: Case, allowance) -> Call:
    """The case's "compensate" step message, as the bot posted it in the card's thread."""
    text, blocks = cards.step_message(case, Step.COMPENSATE, allowance=allowance)
    return Call(method="chat.postMessage", args={"channel": "C1", "thread_ts": case.card.id, "text": text,
                                                 "blocks": blocks},
                answer={"ok": True, "channel": "C1", "ts": case.card.id + "1"})


def _answer(status: int, text: str) -> str | None:
    """None when the form closed (recorded); otherwise the sentence shown in the form."""
    assert status == 200, (status, text)
    if text == "":
        return None
    answer = json.loads(text)
    assert answer["response_action"] == "errors", answer
    return answer["errors"]["amount"]


async def test_two_processes_share_one_ledger_and_never_overspend(tmp_path, fake_slack: FakeSlack, http):
    async with fresh_schema() as schema:
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": fake_slack.api_url, "AMENDS_DB": url_for(schema), "AMENDS_DB_POOL_SIZE": "4"}
        starting = [asyncio.create_task(LoggingBot.start(env, tmp_path)) for _ in range(2)]  # at once: racing migrations
        await asyncio.wait(starting)
        bots = [task.result() for task in starting if not task.exception()]
        store = PostgresStore(url=TEST_URL, schema=schema)
        try:
            assert len(bots) == 2, [task.exception() for task in starting]
            await store.open()
            # The two processes migrated the empty schema at the same moment: one did, the other waited.
            assert sorted(bot.count("applied database migration 0001_initial") for bot in bots) == [0, 1]
            drivers = [SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
                       for bot in bots]
            recovery, cases = await _cases_at_compensate(store)

            # One click delivered to both processes (a Slack retry landing elsewhere) is handled once.
            allowance = await recovery.allowance(workspace=WORKSPACE, person="U1")
            click = drivers[0].click_body(_compensate_message(recovery, cases[0], allowance), "give")
            trigger = json.loads(dict(parse_qsl(click))["payload"])["trigger_id"]
            assert [await driver.post(click) for driver in drivers] == [(200, ""), (200, "")]
            await fake_slack.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger)
            done, pending = await asyncio.wait(
                [asyncio.create_task(bot.wait_for_line("ignoring a repeated delivery", timeout=10)) for bot in bots],
                return_when=asyncio.FIRST_COMPLETED)
            for waiting in pending:
                waiting.cancel()
            assert [task.exception() for task in done] == [None]
            assert len([c for c in fake_slack.of("views.open") if c.args.get("trigger_id") == trigger]) == 1
            assert sum(bot.count("ignoring a repeated delivery") for bot in bots) == 1

            # Every form submitted to both processes at once: 48 compensations for one person.
            forms = [await _give_form(recovery, case, n) for n, case in enumerate(cases)]
            sends = [driver.submit(form, {"amount": str(AMOUNT)}) for form in forms for driver in drivers]
            answers = await asyncio.wait_for(asyncio.gather(*sends), DEADLINE)
            told = [_answer(status, text) for status, text in answers]  # every request got an answer

            succeeded = [form_case.id for form_case, sentence in zip((c for c in cases for _ in drivers), told)
                         if sentence is None]
            refusals = [sentence for sentence in told if sentence is not None]
            assert all(FAIR_REFUSALS.search(sentence) for sentence in refusals), set(refusals)
            assert len(succeeded) == BUDGET // AMOUNT, told  # the whole budget, and not a cent more

            ledger = await rows(schema, "SELECT case_id, employee, amount FROM ledger ORDER BY seq")
            assert sum(row["amount"] for row in ledger) == BUDGET
            assert sorted(row["case_id"] for row in ledger) == sorted(succeeded)  # each success, exactly once
            assert {row["employee"] for row in ledger} == {"U1"}
            for case in cases:
                stored = await store.get_case(workspace=WORKSPACE, case_id=case.id)
                assert stored.current_step is (Step.FOLLOW_UP if case.id in succeeded else Step.COMPENSATE), case.id

            # Each success was then shown in Slack: the next step posted in that case's thread.
            cards_of = {case.card.id for case in cases if case.id in succeeded}
            await fake_slack.wait_for("chat.postMessage", count=len(succeeded), timeout=10, where=lambda c: (
                c.args.get("thread_ts") in cards_of and step_title(Step.FOLLOW_UP) in c.args.get("text", "")))
        finally:
            await store.close()
            for bot in bots:
                await bot.stop()
        for bot in bots:
            log = "".join(bot.lines)
            assert bot.count("using the PostgreSQL store at") == 1, log
            assert "Traceback" not in log and "unhandled error" not in log, log
