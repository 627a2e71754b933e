"""A close marker made good after a crash goes to the platform the case lives on, whatever else the
workspace has set up (handlers/after_close.py)."""

from dataclasses import replace
from zoneinfo import ZoneInfo

from bot.cases import MessageRef
from bot.recovery import Recovery
from bot.store.tiny import TinyStore
from handlers import after_close
from tests.conftest import FakeClock


async def closed_case(recovery, *, card):
    case = await recovery.open_case(workspace="W", owner="U1", owner_name="Amy", what_happened="cold soup")
    return replace(case, card=card)


async def test_each_case_goes_to_its_own_platform():
    store = TinyStore(path=None)
    recovery = Recovery(store=store, clock=FakeClock(), currency="USD", tz=ZoneInfo("UTC"))
    teams, slack = after_close.teams(recovery), after_close.slack(recovery)
    try:
        in_slack = await closed_case(recovery, card=MessageRef("C0123", "1700000000.000100"))
        in_teams = await closed_case(recovery, card=MessageRef("19:abc@thread.tacv2;messageid=1764", "1764"))
        no_card = await closed_case(recovery, card=None)

        # A Teams case with no Teams recovery channel is still Teams': nothing is owed to Slack for it.
        assert await teams(in_teams) == [] and await slack(in_teams) is None
        assert await teams(in_slack) is None and [m.kind for m in await slack(in_slack)] == ["slack.card"]
        assert await teams(no_card) is None and await slack(no_card) == []  # no card: nothing to update

        await recovery.set_recovery_channel(workspace="W", channel="CREC")
        await store.put_reference(workspace="W", key=after_close.TEAMS_RECOVERY_CHANNEL, value={"conversation": {}})
        assert [m.kind for m in await slack(in_slack)] == ["slack.summary", "slack.card"]
        assert [m.kind for m in await teams(in_teams)] == [after_close.TEAMS_SUMMARY]
    finally:
        await store.close()
