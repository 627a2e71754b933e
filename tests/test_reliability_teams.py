"""The Teams summary goes through the outbox: Bot Framework's 429/412/502/504 are retried, a restart resumes it."""

import asyncio
from datetime import datetime, timedelta, timezone

from bot.checklist import Step
from bot.outbox import Backoff
from bot.store import open_store
from handlers.teams import publish as teams_publish
from tests.conftest import RunningBot
from tests.doubles.teams_driver import (AMY, FLOOR, RECOVERIES, TeamsDriver, open_case, teams_settings, wait_answer,
                                        wait_step, walk_to)
from tests.test_reliability_outbox import DEADLINE, QUICK, owes_nothing
from tests.test_teams_recovery import TENANT, set_recovery_channel, summaries

pytest_plugins = ("tests.doubles.teams_fixtures",)


def test_the_app_and_the_close_marker_name_the_kind_the_teams_glue_sends():
    import app
    from handlers import after_close
    assert f'"{teams_publish.SUMMARY}"' in open(app.__file__).read()
    assert (after_close.TEAMS_SUMMARY, after_close.TEAMS_RECOVERY_CHANNEL) == (teams_publish.SUMMARY,
                                                                               teams_publish.RECOVERY_CHANNEL)


async def test_a_teams_close_whose_summary_was_never_owed_is_made_good(teams, connector, teams_bot, monkeypatch):
    import bot.outbox
    monkeypatch.setattr(bot.outbox, "CLOSE_GRACE", timedelta(0))
    await to_follow_up(teams, connector)
    await teams_bot.recovery.follow_up(workspace=TENANT, case_id="R-1001", actor=AMY.aad, on=None)  # no glue
    await connector.wait_for(lambda c: c.conversation == RECOVERIES.id and "Recovered: " in c.shown)
    await asyncio.wait_for(owes_nothing(teams_bot.recovery.outbox), DEADLINE)
    [summary] = summaries(connector)
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert case.summary.id == summary.answer["id"]


async def to_follow_up(teams, connector):
    await set_recovery_channel(teams)
    await open_case(teams, channel=FLOOR)
    compensate = await walk_to(teams, Step.COMPENSATE)
    await teams.execute(compensate, "nothing_needed")
    return await wait_step(connector, Step.FOLLOW_UP)


async def test_the_summary_arrives_once_through_429_412_502_and_504(teams, connector, teams_bot):
    teams_bot.recovery.outbox.backoff = QUICK
    follow_up = await to_follow_up(teams, connector)
    for status, code in ((429, "Throttled"), (412, "PreconditionFailed"), (502, "BadGateway"), (504, "GatewayTimeout")):
        connector.fail_next(RECOVERIES.id, status=status, code=code)
    assert (await teams.execute(follow_up, "no_follow_up"))[0] == 200
    closing = await wait_answer(connector, "is closed")
    assert "couldn't" not in closing.shown  # on its way: not a failure
    await asyncio.wait_for(owes_nothing(teams_bot.recovery.outbox), DEADLINE)
    [summary] = summaries(connector)
    refused = [c for c in connector.calls if c.conversation == RECOVERIES.id and c.method == "POST" and c.status >= 400]
    assert len(refused) == 4  # every fault was met, and none of them made a post
    case = await teams_bot.recovery.case(workspace=TENANT, case_id="R-1001")
    assert (case.summary.channel, case.summary.id) == (RECOVERIES.id, summary.answer["id"])


async def test_a_summary_owed_at_a_restart_goes_out_without_waiting_for_a_teams_request(connector, clock, tmp_path,
                                                                                          http):
    path = str(tmp_path / "amends.json")
    first = await RunningBot.start(teams_settings(), store=open_store(path), clock=clock)
    first.recovery.outbox.backoff = Backoff(base=3600, cap=3600)  # it would wait an hour
    teams = TeamsDriver(bot_url=first.url, connector=connector, session=http)
    try:
        follow_up = await to_follow_up(teams, connector)
        connector.fail_next(RECOVERIES.id, status=502, code="BadGateway")
        await teams.execute(follow_up, "no_follow_up")
        await wait_answer(connector, "is closed")
    finally:
        await first.stop()
    assert summaries(connector) == []
    stopped = open_store(path)
    try:
        [owed] = [m for m in await stopped.owed_outbox()
                  if m.kind not in ("digest", "followup.nudge", "retention")]  # schedules are owed too
        assert owed.kind == teams_publish.SUMMARY and owed.attempts == 1 and owed.in_doubt  # a 502: it may have arrived
        await stopped.retry_outbox(key=owed.key, due=datetime.now(timezone.utc), error=owed.error, in_doubt=True)
    finally:
        await stopped.close()  # as if the hour had passed
    second = await RunningBot.start(teams_settings(), store=open_store(path), clock=clock)
    try:
        await asyncio.wait_for(owes_nothing(second.recovery.outbox), DEADLINE)
        case = await second.recovery.case(workspace=TENANT, case_id="R-1001")
    finally:
        await second.stop()
    [summary] = summaries(connector)  # no Teams request came in: the outbox loaded the Teams glue itself
    assert case.summary.id == summary.answer["id"]
