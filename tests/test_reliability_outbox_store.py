"""The outbox's store operations, on every backend (the `store` fixture of tests/test_store.py)."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from bot.outbox import Outbox, OutboxMessage
from bot.store.copy import CopyFailed, copy_store
from bot.store.tiny import TinyStore
from tests.test_store import store  # noqa: F401 — the one parametrised fixture: memory, TinyDB, PostgreSQL

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def message(key: str, case_id: str = "R-1001", *, workspace: str = "T1", due: datetime = T0) -> OutboxMessage:
    return OutboxMessage(key=key, workspace=workspace, case_id=case_id, kind="slack.summary",
                         body={"channel": "CREC", "case": case_id}, owed_at=T0, due=due)


async def test_owed_messages_come_back_whole_in_the_order_owed(store):
    await store.add_outbox(messages=[message("a"), message("b", "R-1002")])
    await store.add_outbox(messages=[message("c")])
    owed = await store.owed_outbox()
    assert [m.key for m in owed] == ["a", "b", "c"]
    assert owed[0].seq < owed[1].seq < owed[2].seq
    first = owed[0]
    assert (first.workspace, first.case_id, first.kind, first.body, first.owed_at, first.due, first.attempts,
            first.tried_at, first.error) == ("T1", "R-1001", "slack.summary", {"channel": "CREC", "case": "R-1001"},
                                             T0, T0, 0, None, "")


async def test_a_key_owed_twice_is_owed_once(store):
    await store.add_outbox(messages=[message("a")])
    await store.add_outbox(messages=[message("a", "R-2000"), message("b")])
    assert [(m.key, m.case_id) for m in await store.owed_outbox()] == [("a", "R-1001"), ("b", "R-1001")]


async def test_only_the_oldest_owed_of_each_case_is_due(store):
    await store.add_outbox(messages=[message("a1"), message("b1", "R-1002"), message("a2"),
                                     message("c1", "R-1003", due=T0 + timedelta(minutes=5))])
    assert [m.key for m in await store.due_outbox(now=T0, limit=10)] == ["a1", "b1"]
    assert [m.key for m in await store.due_outbox(now=T0, limit=1)] == ["a1"]
    assert await store.next_outbox_due(after=T0) == T0 + timedelta(minutes=5)
    await store.outbox_sent(key="a1")
    assert [m.key for m in await store.due_outbox(now=T0, limit=10)] == ["b1", "a2"]
    assert [m.key for m in await store.due_outbox(now=T0 + timedelta(minutes=5), limit=10)] == ["b1", "a2", "c1"]


async def test_a_message_waiting_to_retry_holds_back_the_rest_of_its_case(store):
    await store.add_outbox(messages=[message("a1"), message("a2")])
    await store.try_outbox(key="a1", at=T0, lease=LEASE)
    later = T0 + timedelta(seconds=30)
    await store.retry_outbox(key="a1", due=later, error="ratelimited", in_doubt=False)
    assert await store.due_outbox(now=T0 + timedelta(seconds=29), limit=10) == []
    assert await store.next_outbox_due(after=T0) == later
    assert [m.key for m in await store.due_outbox(now=later, limit=10)] == ["a1"]


async def test_an_attempt_is_recorded_before_it_leaves_and_cleared_only_when_it_surely_failed(store):
    await store.add_outbox(messages=[message("a")])
    tried = await store.try_outbox(key="a", at=T0 + timedelta(seconds=1), lease=LEASE)
    assert (tried.attempts, tried.tried_at, tried.in_doubt) == (1, T0 + timedelta(seconds=1), True)
    await store.retry_outbox(key="a", due=T0 + timedelta(seconds=2), error="timeout", in_doubt=True)
    [kept] = await store.owed_outbox()
    assert (kept.attempts, kept.tried_at, kept.error, kept.due) == (1, T0 + timedelta(seconds=1), "timeout",
                                                                    T0 + timedelta(seconds=2))
    await store.try_outbox(key="a", at=T0 + timedelta(seconds=3), lease=LEASE)
    await store.retry_outbox(key="a", due=T0 + timedelta(seconds=4), error="ratelimited", in_doubt=False)
    [cleared] = await store.owed_outbox()
    assert (cleared.attempts, cleared.tried_at, cleared.in_doubt) == (2, None, False)


async def test_a_sent_message_is_no_longer_owed(store):
    await store.add_outbox(messages=[message("a")])
    await store.outbox_sent(key="a")
    await store.outbox_sent(key="a")  # twice is harmless
    assert await store.owed_outbox() == []
    assert await store.try_outbox(key="a", at=T0, lease=LEASE) is None
    assert await store.next_outbox_due(after=T0 - timedelta(days=1)) is None


async def test_the_outbox_survives_a_restart_of_the_embedded_store(tmp_path):
    path = str(tmp_path / "amends.json")
    first = TinyStore(path=path)
    await first.add_outbox(messages=[message("a"), message("b")])
    await first.try_outbox(key="a", at=T0, lease=LEASE)  # the process dies mid-send: no close, no fold
    second = TinyStore(path=path)
    try:
        owed = await second.owed_outbox()
        assert [(m.key, m.in_doubt, m.attempts) for m in owed] == [("a", True, 1), ("b", False, 0)]
        await second.outbox_sent(key="a")
    finally:
        await second.close()  # folds the journal into the snapshot
    third = TinyStore(path=path)
    try:
        assert [m.key for m in await third.owed_outbox()] == ["b"]
        await third.add_outbox(messages=[message("c")])
        assert [m.key for m in await third.owed_outbox()] == ["b", "c"]
    finally:
        await third.close()


async def test_a_claimed_message_is_not_taken_again_until_its_lease_ends(store):
    await store.add_outbox(messages=[message("a")])
    assert await store.try_outbox(key="a", at=T0, lease=LEASE) is not None
    assert await store.try_outbox(key="a", at=T0 + timedelta(seconds=29), lease=LEASE) is None  # another sender
    assert await store.due_outbox(now=T0 + timedelta(seconds=29), limit=10) == []
    again = await store.try_outbox(key="a", at=T0 + LEASE, lease=LEASE)  # the first one died mid-send
    assert (again.attempts, again.in_doubt) == (2, True)


async def test_a_copy_carries_what_is_owed_and_refuses_what_may_have_arrived(tmp_path):
    source = str(tmp_path / "amends.json")
    owing = TinyStore(path=source)
    await owing.add_outbox(messages=[message("a"), message("b")])
    await owing.close()
    target = str(tmp_path / "copy" / "amends.json")
    await copy_store(source=source, target=target)
    copied = TinyStore(path=target)
    try:
        assert [(m.key, m.attempts, m.in_doubt) for m in await copied.owed_outbox()] == [("a", 0, False), ("b", 0, False)]
    finally:
        await copied.close()

    owing = TinyStore(path=source)
    await owing.try_outbox(key="a", at=T0, lease=LEASE)  # the bot stopped mid-send: "a" may have arrived
    await owing.close()
    with pytest.raises(CopyFailed, match="may already have reached Slack or Teams"):
        await copy_store(source=source, target=str(tmp_path / "again" / "amends.json"))
    assert not (tmp_path / "again" / "amends.json").exists()


async def test_a_change_and_the_messages_it_owes_are_one_write(store):
    from bot.recovery import Recovery
    from tests.test_store import W1, FakeClock, _to_compensate
    from zoneinfo import ZoneInfo
    recovery = Recovery(store=store, clock=FakeClock(), currency="USD", tz=ZoneInfo("UTC"))
    case = await _to_compensate(recovery)
    await recovery.nothing_needed(workspace=W1, case_id=case.id, actor="U1")

    def refuse(case):
        raise RuntimeError("refused inside the transaction")
    with pytest.raises(RuntimeError):
        await store.change_case(workspace=W1, case_id=case.id, change=refuse, owe=lambda c: [message("x")])
    nudge = [m.key for m in await store.owed_outbox()]  # owed when the case opened (bot/followups.py)
    assert [m.key for m in await store.owed_outbox()] == nudge  # refused: nothing owed either
    closed = await recovery.follow_up(workspace=W1, case_id=case.id, actor="U1", on=None)
    [marker] = [m for m in await store.owed_outbox() if m.key not in nudge]
    assert closed.is_closed and (marker.kind, marker.key) == ("closed", f"closed:{W1}:{case.id}")
    assert marker.due > marker.owed_at  # it gives the glue its moment first
    await store.add_outbox(messages=[message("summary", case.id, workspace=W1)], settles=marker.key)
    assert [m.key for m in await store.owed_outbox() if m.key not in nudge] == ["summary"]  # owed and settled in one write


async def _lane_heads(store, now):  # noqa: F811
    return [(m.key, m.due) for m in await store.due_outbox(now=now, limit=100)], \
        await store.next_outbox_due(after=now)


async def _walk_lanes(store):  # noqa: F811
    later = T0 + timedelta(days=1)
    await store.add_outbox(messages=[message("a1", "A"), message("b1", "B", due=later), message("a2", "A"),
                                     message("c1", "C", due=later + timedelta(hours=1))])
    assert await _lane_heads(store, T0) == ([("a1", T0)], later)
    await store.retry_outbox(key="a1", due=T0 + timedelta(minutes=5), error="429", in_doubt=False)
    assert await _lane_heads(store, T0) == ([], T0 + timedelta(minutes=5))  # a2 waits behind a1
    await store.outbox_sent(key="a1")
    assert await _lane_heads(store, T0) == ([("a2", T0)], later)
    await store.add_outbox(messages=[message("b0", "B")], settles="b1")  # b1 settled, b0 owed in one write
    await store.outbox_sent(key="a2")
    assert await _lane_heads(store, T0) == ([("b0", T0)], later + timedelta(hours=1))


async def test_each_lane_s_head_follows_sends_retries_and_settles(store):  # noqa: F811
    """What is due is the oldest owed of each lane, whatever was sent, retried or owed since."""
    await _walk_lanes(store)


async def test_the_embedded_outbox_index_is_rebuilt_on_reload(tmp_path):
    path = str(tmp_path / "amends.json")
    first = TinyStore(path=path)
    try:
        await _walk_lanes(first)
    finally:
        await first.close()
    reloaded = TinyStore(path=path)
    try:
        assert await _lane_heads(reloaded, T0) == ([("b0", T0)], T0 + timedelta(days=1, hours=1))
    finally:
        await reloaded.close()


async def test_owing_for_later_wakes_the_sender_only_if_it_would_sleep_past_it():
    """Each case opened owes its idle nudge for 15 minutes later: that must not cost a round of the sender each."""
    from tests.conftest import FakeClock
    store, clock = TinyStore(path=None), FakeClock(T0)
    outbox = Outbox(store=store, clock=clock)
    outbox.register("k", object())  # nothing is due in this test: it is never asked to deliver
    await store.add_outbox(messages=[message("soon", "A", due=T0 + timedelta(minutes=10))])
    outbox.start()
    try:
        await asyncio.wait_for(outbox.after_round(0), 5)  # nothing due: asleep until T0 + 10 min
        outbox.wake_by(T0 + timedelta(minutes=15))
        assert not outbox._wake.is_set()  # it wakes at T0 + 10 min anyway
        outbox.wake_by(T0 + timedelta(minutes=5))
        assert outbox._wake.is_set()  # earlier than it would: woken
    finally:
        await outbox.stop()
        await store.close()


async def test_the_sender_stops_even_when_stopped_the_moment_it_is_woken():
    """Python 3.11's wait_for can swallow a cancel that lands as the wake-up does; the sender then slept on,
    and shutting the bot down hung."""
    from tests.conftest import FakeClock
    store = TinyStore(path=None)
    outbox = Outbox(store=store, clock=FakeClock(T0))
    await store.add_outbox(messages=[message("later", "A", due=T0 + timedelta(minutes=10))])
    outbox.start()
    try:
        await asyncio.wait_for(outbox.after_round(0), 5)  # asleep for ten minutes
        task = outbox._task
        outbox.wake()
        await asyncio.wait_for(outbox.stop(), 5)
        assert task.done()  # not still sleeping, its cancel swallowed
    finally:
        await store.close()
