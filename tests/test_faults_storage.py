"""A full disk, seen through the Slack route: the person reads "nothing was recorded", nothing is
half-written, and the bot keeps serving once the disk has room again. (The store's own view of the
same faults, on every backend: tests/test_store.py.)"""

import os
import uuid
from decimal import Decimal
from pathlib import Path

from bot.checklist import Step
from bot.store import tiny
from tests.flows import open_case, walk_to


def full_disk(monkeypatch) -> list[bytes]:
    """Every journal append writes half its line, then fails as a full disk does."""
    attempts: list[bytes] = []

    def no_space(fd, line):
        attempts.append(line)
        os.write(fd, line[: len(line) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tiny, "_append_line", no_space)
    return attempts


async def test_a_full_disk_refuses_a_gift_and_a_new_case_with_a_sentence_then_serving_resumes(
        slack, fake_slack, bot, tmp_path, monkeypatch):
    journal = Path(str(tmp_path / "amends.json") + ".journal")
    card = await open_case(slack, fake_slack)
    compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
    trigger = f"give-{uuid.uuid4().hex}"
    await slack.post(slack.click_body(compensate, "give", trigger_id=trigger))
    [form] = await fake_slack.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger)
    before = journal.read_bytes()

    attempts = full_disk(monkeypatch)
    status, body = await slack.submit(form, {"amount": "15"})
    assert status == 200 and "nothing was recorded" in body and "errors" in body  # shown inside the form
    status, _ = await slack.command("lost booking", channel="C2")
    assert status == 200
    told = await fake_slack.wait_for("response_url", where=lambda c: "nothing was recorded" in c.args.get("text", ""))
    assert told
    assert len(attempts) >= 2  # the fault was met by both
    assert journal.read_bytes() == before  # the half lines were taken back
    assert await bot.recovery.store.ledger(workspace="T1") == []
    assert len(await bot.recovery.open_cases(workspace="T1", owner="U1")) == 1

    monkeypatch.undo()  # the disk has room again
    status, body = await slack.submit(form, {"amount": "15"})
    assert (status, body) == (200, "")
    [entry] = await bot.recovery.store.ledger(workspace="T1")
    assert entry.amount == Decimal("15")
    await open_case(slack, fake_slack, "lost booking", channel="C2")
    assert len(await bot.recovery.open_cases(workspace="T1", owner="U1")) == 2
