"""Steps a person takes in Slack, built from what the bot actually posted (found in the fake's records)."""

import asyncio
import uuid

from bot.checklist import CHECKLIST, GUIDANCE, Step
from bot.digest import KIND as DIGEST
from tests.doubles.slack_api import Call, FakeSlack
from tests.doubles.slack_client import SlackDriver


def step_title(step: Step) -> str:
    return f"{CHECKLIST.index(step) + 1}/{len(CHECKLIST)} · {GUIDANCE[step].title}"


def thread_posts(fake: FakeSlack, card: Call) -> list[Call]:
    return [c for c in fake.of("chat.postMessage") if c.answer.get("ok") and c.args.get("thread_ts") == card.answer["ts"]]


def step_posts(fake: FakeSlack, card: Call, step: Step) -> list[Call]:
    return [c for c in thread_posts(fake, card) if step_title(step) in c.args["text"]]


async def wait_step(fake: FakeSlack, card: Call, step: Step) -> Call:
    await fake.wait_for("chat.postMessage", where=lambda c: c.answer.get("ok") and c.args.get("thread_ts") == card.answer["ts"]
                        and step_title(step) in c.args["text"])
    return step_posts(fake, card, step)[-1]


async def open_case(slack: SlackDriver, fake: FakeSlack, text: str = "cold soup, table 4, waited 40 min",
                    **kwargs) -> Call:
    """Type /recover <text>; return the case card once its first step is in the thread. The card is
    found by where it was posted (the channel, or the bot's DM with the person), so several people
    can open cases at once."""
    user, channel = kwargs.get("user", "U1"), kwargs.get("channel", "C1")
    seen = {id(c) for c in fake.of("chat.postMessage")}

    def is_card(c: Call) -> bool:
        return (id(c) not in seen and "thread_ts" not in c.args and c.answer.get("ok")
                and c.args["channel"] in (channel, f"DBOT{user}"))
    status, _ = await slack.command(text, **kwargs)
    assert status == 200
    card = (await fake.wait_for("chat.postMessage", where=is_card))[0]
    await wait_step(fake, card, Step.APOLOGISE)
    return card


async def opened_view(fake: FakeSlack, count: int) -> Call:
    return (await fake.wait_for("views.open", count=count))[count - 1]


async def walk_to(slack: SlackDriver, fake: FakeSlack, card: Call, step: Step, **who) -> Call:
    """Tick every step before `step` with a plain Done; return `step`'s thread message."""
    for earlier in CHECKLIST[: CHECKLIST.index(step)]:
        assert earlier in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX), "walk_to only ticks the first three"
        message = await wait_step(fake, card, earlier)
        status, _ = await slack.click(message, "step_done", **who)
        assert status == 200
    return await wait_step(fake, card, step)


async def give(slack: SlackDriver, fake: FakeSlack, compensate_message: Call, amount: str, *,
               kind: str | None = None, **who) -> tuple[int, str]:
    """Tap "Give something…" and submit the form; returns the submission's HTTP answer."""
    trigger = f"give-{uuid.uuid4().hex}"
    await slack.post(slack.click_body(compensate_message, "give", trigger_id=trigger, **who))
    view = (await fake.wait_for("views.open", where=lambda c: c.args.get("trigger_id") == trigger))[0]
    values: dict = {"amount": amount}
    if kind:
        values["kind"] = {"selected_option": {"text": {"type": "plain_text", "text": kind}, "value": kind}}
    return await slack.submit(view, values, **who)


async def close(slack: SlackDriver, fake: FakeSlack, follow_up_message: Call, action: str = "no_follow_up", *,
                cause: str = "other", change: str = "", **who) -> tuple[int, str]:
    """Tap a follow-up button with a root cause picked and, optionally, what will change (closing asks for
    them: bot/learning.py). A plain slack.click on a follow-up button picks the first cause by itself."""
    return await slack.click(follow_up_message, action, values={"root_cause": cause, "change_note": change}, **who)


async def next_slots(outbox, expected: list, *, deadline: float = 10.0) -> list:
    """The due times of the owed digests, once they are `expected` (the sender settles a slot just after its
    post arrives: wait round by round, with a deadline)."""
    async def settled():
        while True:
            seen = outbox.rounds
            owed = [m.due for m in await outbox.store.owed_outbox() if m.kind == DIGEST]
            if owed == expected:
                return owed
            await outbox.after_round(seen)
    try:
        return await asyncio.wait_for(settled(), deadline)
    except TimeoutError:
        return [m.due for m in await outbox.store.owed_outbox() if m.kind == DIGEST]
