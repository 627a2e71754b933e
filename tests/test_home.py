"""What a Home shows (bot/home.py) on every store backend, managers marked by admins, and the commands."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bot import commands
from bot.checklist import Step
from bot.errors import BadCommand, UnknownRole
from bot.home import build_home, managing_sentence, spend_line
from bot.managers import Managers
from tests.test_store import W1, W2, store, clock, recovery  # noqa: F401 — the parametrised fixture


async def recover(recovery, clock, *, owner, what, minutes, give=None, cause="", workspace=W1):
    """Open a case now, close it `minutes` later (giving `give`), with a root cause; the clock ends there."""
    case = await recovery.open_case(workspace=workspace, owner=owner, owner_name=owner.title(), what_happened=what)
    for step in (Step.APOLOGISE, Step.EMPATHISE, Step.FIX):
        await recovery.complete_step(workspace=workspace, case_id=case.id, actor=owner, step=step)
    clock.at += timedelta(minutes=minutes)
    if give:
        await recovery.give(workspace=workspace, case_id=case.id, actor=owner, kind="voucher", amount_text=give)
    else:
        await recovery.nothing_needed(workspace=workspace, case_id=case.id, actor=owner)
    await recovery.follow_up(workspace=workspace, case_id=case.id, actor=owner, on=None)
    if cause:
        await recovery.store.change_case(workspace=workspace, case_id=case.id,
                                         change=lambda c: replace(c, root_cause=cause))
    return case.id


async def a_week(recovery, clock):
    """Monday: Amy (server) recovers two cases and has one open; Ben (staff) has one open; Cal leads shifts."""
    await recovery.set_limit(workspace=W1, role="server", limit="25", budget="100/week")
    await recovery.set_limit(workspace=W1, role="shift-lead", limit="50", budget="none")
    await recovery.assign_role(workspace=W1, person="amy", role="server")
    await recovery.assign_role(workspace=W1, person="cal", role="shift-lead")
    await Managers(recovery=recovery).set_managing(workspace=W1, role="shift-lead", managing=True)
    first = await recover(recovery, clock, owner="amy", what="cold soup", minutes=5, give="15", cause="Kitchen delay")
    second = await recover(recovery, clock, owner="amy", what="wrong order", minutes=30, cause=" kitchen   DELAY")
    await recover(recovery, clock, owner="ben", what="dirty glass", minutes=1, cause="cleaning")
    await recovery.open_case(workspace=W1, owner="ben", owner_name="Ben", what_happened="long wait")
    clock.at += timedelta(minutes=10)
    await recovery.open_case(workspace=W1, owner="amy", owner_name="Amy", what_happened="cold fries")
    await recovery.open_case(workspace=W2, owner="amy", owner_name="Amy", what_happened="another workspace")
    clock.at += timedelta(hours=1)
    return first, second


async def test_everyone_sees_their_open_cases_allowance_and_recent_recoveries(recovery, clock):
    first, second = await a_week(recovery, clock)
    home = await build_home(recovery, workspace=W1, person="amy", is_admin=False)
    assert [c.what_happened for c in home.open_cases] == ["cold fries"]
    assert [c.id for c in home.recent] == [second, first]  # newest first
    assert home.allowance.role.name == "server" and home.allowance.left == Decimal("85")
    assert (home.team, home.settings, home.is_manager, home.is_admin) == (None, None, False, False)


async def test_a_manager_sees_the_team_and_an_admin_also_the_settings(recovery, clock):
    await a_week(recovery, clock)
    lead = await build_home(recovery, workspace=W1, person="cal", is_admin=False)
    assert lead.is_manager and not lead.is_admin
    team = lead.team
    assert [(c.what_happened, age) for c, age in team.open_cases] == [
        ("long wait", timedelta(hours=1, minutes=10)), ("cold fries", timedelta(hours=1))]
    assert team.recoveries_this_week == 3
    assert team.median_time_to_recover == timedelta(minutes=5)  # of 1, 5 and 30 minutes
    assert team.root_causes == (("kitchen delay", 2), ("cleaning", 1))
    spend = {line.role.name: (line.spent, line.people) for line in team.spend}
    assert spend == {"server": (Decimal("15"), 1), "shift-lead": (Decimal(0), 0), "staff": (Decimal(0), 0)}
    admin = await build_home(recovery, workspace=W1, person="ada", is_admin=True)
    assert admin.is_manager and admin.is_admin
    assert [r.name for r in admin.settings.roles] == ["server", "shift-lead", "staff"]
    assert admin.settings.managing == {"shift-lead"} and admin.settings.channel is None
    assert admin.settings.catalogue  # what people can give, as lines
    nobody = await build_home(recovery, workspace=W1, person="ben", is_admin=False)
    assert nobody.team is None


async def test_a_home_reads_the_persons_role_once(recovery, clock, monkeypatch):
    await a_week(recovery, clock)
    reads = []
    role_of = recovery.store.role_of

    async def counted(**kwargs):
        reads.append(kwargs["person"])
        return await role_of(**kwargs)
    monkeypatch.setattr(recovery.store, "role_of", counted)
    lead = await build_home(recovery, workspace=W1, person="cal", is_admin=False)
    assert lead.is_manager and reads == ["cal"]  # the allowance's role also says whether they manage


async def test_last_weeks_recoveries_leave_the_week_but_stay_recent(recovery, clock):
    await a_week(recovery, clock)
    clock.at += timedelta(days=7)
    lead = await build_home(recovery, workspace=W1, person="cal", is_admin=False)
    assert lead.team.recoveries_this_week == 0 and lead.team.median_time_to_recover is None
    assert all(line.spent == 0 for line in lead.team.spend)
    assert len((await build_home(recovery, workspace=W1, person="amy", is_admin=False)).recent) == 2
    clock.at += timedelta(days=30)
    assert (await build_home(recovery, workspace=W1, person="amy", is_admin=False)).recent == ()


async def test_a_reopened_case_counts_its_time_recovering_not_the_wait_for_its_follow_up(recovery, clock):
    from bot.followups import FollowUps
    from cards.slack_home import home_view

    case_id = await recover(recovery, clock, owner="amy", what="cold soup", minutes=10, give="5")
    clock.at += timedelta(days=2)  # the follow-up: still unhappy
    await FollowUps(recovery).reopen(workspace=W1, case_id=case_id, actor="amy")
    clock.at += timedelta(minutes=20)
    await recovery.complete_step(workspace=W1, case_id=case_id, actor="amy", step=Step.FIX)
    await recovery.follow_up(workspace=W1, case_id=case_id, actor="amy", on=None)
    home = await build_home(recovery, workspace=W1, person="amy", is_admin=True)
    assert home.team.median_time_to_recover == timedelta(minutes=30)  # not 2 days 30 min
    assert "· 2 d (reopened once; 30 min of it recovering)" in str(home_view(home))


async def test_each_roles_spend_is_over_its_own_budget_period_with_the_most_one_person_gave(recovery, clock):
    """A monthly budget stands against this month's spend, not this week's: the Home said "$0 given" next to
    "budget $300 a person per month" for a role that had spent all month."""
    await recovery.set_limit(workspace=W1, role="host", limit="25", budget="300/month")
    await recovery.set_limit(workspace=W1, role="runner", limit="25", budget="20/day")
    for person, role in (("hana", "host"), ("hugo", "host"), ("rui", "runner")):
        await recovery.assign_role(workspace=W1, person=person, role=role)
    await recover(recovery, clock, owner="hana", what="cold soup", minutes=5, give="10")  # Monday 2 March
    await recover(recovery, clock, owner="hugo", what="late", minutes=5, give="20")
    await recover(recovery, clock, owner="rui", what="spilt", minutes=5, give="5")
    await recover(recovery, clock, owner="amy", what="noise", minutes=5, give="7")  # staff: $100 a week
    clock.at += timedelta(days=8)  # Tuesday 10 March: another week and day, the same month
    await recover(recovery, clock, owner="hana", what="wrong wine", minutes=5, give="4")
    team = (await build_home(recovery, workspace=W1, person="ada", is_admin=True)).team
    spend = {line.role.name: (line.period.value, line.spent, line.people, line.most_by_one) for line in team.spend}
    assert spend == {"host": ("month", Decimal("34"), 2, Decimal("20")),
                     "runner": ("day", Decimal(0), 0, Decimal(0)),
                     "staff": ("week", Decimal(0), 0, Decimal(0))}
    host = next(line for line in team.spend if line.role.name == "host")
    assert spend_line(host, "USD") == ("$34 given this month by 2 people · budget $300 a person per month, "
                                       "the most one gave $20")


async def test_admins_mark_and_unmark_managing_roles_which_must_exist(recovery, clock):
    await recovery.set_limit(workspace=W1, role="shift-lead", limit="50", budget=None)
    said = await managing_sentence(recovery, workspace=W1, role="Shift-Lead", managing=True)
    assert said == ("Saved. People in shift-lead are managers now: they see the team's recoveries. "
                    "Managing roles: shift-lead.")
    managers = Managers(recovery=recovery)
    await recovery.assign_role(workspace=W1, person="cal", role="shift-lead")
    assert await managers.is_manager(workspace=W1, person="cal", is_admin=False)
    said = await managing_sentence(recovery, workspace=W1, role="shift-lead", managing=False)
    assert said == "Saved. shift-lead is no longer a managing role. Managing roles: none (admins always are)."
    assert not await managers.is_manager(workspace=W1, person="cal", is_admin=False)
    with pytest.raises(UnknownRole, match="There is no role 'chef'"):
        await managing_sentence(recovery, workspace=W1, role="chef", managing=True)
    assert "everyone without a role is staff: they all see the team's recoveries and can approve top-ups" in \
        await managing_sentence(recovery, workspace=W1, role="staff", managing=True)
    assert await managers.is_manager(workspace=W1, person="someone-new", is_admin=False)
    await managing_sentence(recovery, workspace=W1, role="staff", managing=False)
    assert await managers.managing_roles(workspace=W1) == set()


@pytest.mark.parametrize("text, parsed", [
    ("admin manager shift-lead on", commands.SetManaging(role="shift-lead", managing=True)),
    ("admin manager shift-lead OFF", commands.SetManaging(role="shift-lead", managing=False)),
    ("home", commands.ShowHome()),
    ("home fries were cold", commands.OpenCase(what_happened="home fries were cold")),
])
def test_the_home_and_manager_commands_parse(text, parsed):
    assert commands.parse(text) == parsed


@pytest.mark.parametrize("text", ["admin manager shift-lead", "admin manager shift-lead maybe",
                                  "admin manager a b on"])
def test_a_bad_manager_command_says_its_usage(text):
    with pytest.raises(BadCommand, match=r"needs a role and on or off. Usage: `/recover admin manager <role> on\|off`"):
        commands.parse(text)


def test_help_lists_home_and_manager():
    text = commands.help_text()
    assert "`/recover home`" in text and "`/recover admin manager <role> on|off`" in text
