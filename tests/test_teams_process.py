"""Teams as a newcomer tries it: `python app.py` in its own process, configured only by environment,
a Teams double sending activities to /api/messages and a fake connector taking the replies."""

from datetime import datetime, timedelta, timezone

from bot.checklist import Step
from cards.words import day
from tests.doubles.teams_driver import ADA, FLOOR, RECOVERIES, TeamsDriver, open_case, wait_answer, wait_step, walk_to
from tests.test_app_process import BotProcess

pytest_plugins = ("tests.doubles.teams_fixtures",)  # the fixture: connector


async def test_a_newcomer_walks_a_teams_case_to_its_summary_against_the_real_process(tmp_path, connector, http):
    bot = await BotProcess.start({"AMENDS_DB": str(tmp_path / "data" / "amends.json"), "AMENDS_ADMINS": ADA.aad},
                                 tmp_path)
    try:
        assert any("MicrosoftAppId is not set" in line for line in bot.log), bot.log  # auth is off, and it says so
        teams = TeamsDriver(bot_url=bot.url, connector=connector, session=http)
        assert (await teams.say("recover admin channel here", user=ADA, channel=RECOVERIES))[0] == 201
        await wait_answer(connector, "Saved. Recovery summaries will be posted in this channel.")
        await open_case(teams, "cold soup, table 4, waited 40 min", channel=FLOOR)
        compensate = await walk_to(teams, Step.COMPENSATE)
        status, body = await teams.execute(compensate, "give", {"kind": "comp item", "amount": "12.50"})
        assert status == 200 and "comp item · $12.50" in str(body["value"])
        before = datetime.now(timezone.utc).date()  # the process runs on the real clock, in UTC
        await teams.execute(await wait_step(connector, Step.FOLLOW_UP), "follow_up_next_week")
        after = datetime.now(timezone.utc).date()
        [summary] = await connector.wait_for(lambda c: c.conversation == RECOVERIES.id and "Recovered:" in c.shown)
        assert "comp item · $12.50 USD" in summary.shown
        assert any(day(today + timedelta(days=7)) in summary.shown for today in {before, after})
    finally:
        await bot.stop()
    assert (tmp_path / "data" / "amends.json").exists()
    assert "Traceback" not in "".join(bot.log)
