"""Pure unit tests of the domain: money, periods, the case checklist, allowances and command parsing.

No store and no clock here: every value is built by hand, so each test states its own world.
"""

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import pytest

from bot import commands
from bot.cases import Case, Compensation, MessageRef, case_id
from bot.checklist import CHECKLIST, Step, next_step
from bot.commands import (AskForDetails, AssignRole, Help, ListMine, OpenCase, SetChannel, SetLimit,
                          ShowLimits, help_text, parse)
from bot.errors import BadCommand, InvalidAmount, NotYourCase, OverAllowance, StepNotOpen
from bot.money import LARGEST_AMOUNT, format_money, parse_amount
from bot.periods import Period, parse_period
from bot.roles import Allowance, Budget, Role

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")


# --- money -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, currency, expected", [
    ("25", "USD", Decimal("25")),
    ("$25", "USD", Decimal("25")),
    ("$ 25", "USD", Decimal("25")),
    ("25.50", "USD", Decimal("25.50")),
    ("25.5", "USD", Decimal("25.50")),
    ("1,000", "USD", Decimal("1000")),
    ("USD 12", "USD", Decimal("12")),
    ("usd 12", "USD", Decimal("12")),
    ("12 USD", "USD", Decimal("12")),
    ("  7  ", "USD", Decimal("7")),
    (".5", "USD", Decimal("0.50")),
    ("2.500", "USD", Decimal("2.50")),  # trailing zeros are not extra precision
    ("1000000", "USD", LARGEST_AMOUNT),
    ("¥1000", "JPY", Decimal("1000")),
    ("1,000", "JPY", Decimal("1000")),
    ("1.234", "KWD", Decimal("1.234")),
])
def test_parse_amount_accepts_what_people_type(text, currency, expected):
    amount = parse_amount(text, currency=currency)
    assert amount == expected
    assert isinstance(amount, Decimal)


def test_parse_amount_quantizes_to_the_currency_minor_unit():
    assert parse_amount("25", currency="USD").as_tuple().exponent == -2
    assert parse_amount("1000", currency="JPY").as_tuple().exponent == 0
    assert parse_amount("1.2", currency="KWD").as_tuple().exponent == -3


@pytest.mark.parametrize("text, currency, words", [
    ("abc", "USD", ["'abc'", "isn't an amount", "like 25"]),
    ("12abc", "USD", ["'12abc'", "isn't an amount"]),
    ("1.2.3", "USD", ["'1.2.3'", "isn't an amount"]),
    ("1,00", "USD", ["'1,00'", "isn't an amount"]),
    ("$", "USD", ["isn't an amount"]),
    ("", "USD", ["Type an amount"]),
    ("   ", "USD", ["Type an amount"]),
    ("-5", "USD", ["negative", "'-5'"]),
    ("$-5", "USD", ["negative"]),
    ("0", "USD", ["more than zero", "Nothing needed"]),
    ("0.00", "USD", ["more than zero"]),
    ("2000000", "USD", ["'2000000'", "far more than any recovery"]),
    ("1000000.01", "USD", ["far more than any recovery"]),
    ("2.505", "USD", ["USD", "at most 2 decimals", "'2.505'"]),
    ("2.5", "JPY", ["JPY", "whole numbers", "'2.5'"]),
    ("1.2345", "KWD", ["KWD", "at most 3 decimals", "'1.2345'"]),
])
def test_parse_amount_refuses_with_a_readable_sentence(text, currency, words):
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(text, currency=currency)
    sentence = refused.value.sentence
    assert sentence == str(refused.value)
    assert sentence[0].isupper() or sentence[0] in "'$"
    assert sentence.rstrip().endswith((".", "”."))
    for word in words:
        assert word in sentence, (word, sentence)


@pytest.mark.parametrize("text, currency", [("1" * 27 + ".123", "USD"), ("1" * 40 + ".5", "JPY")])
def test_parse_amount_refuses_absurdly_long_amounts_as_invalid_amount(text, currency):
    try:
        parse_amount(text, currency=currency)
    except InvalidAmount:
        return
    except InvalidOperation as error:
        pytest.fail(f"parse_amount({text!r}) leaked decimal.InvalidOperation: {error!r}")
    pytest.fail(f"parse_amount({text!r}) accepted an absurd amount")


@pytest.mark.parametrize("amount, currency, shown", [
    (Decimal("25"), "USD", "$25"),
    (Decimal("25.00"), "USD", "$25"),
    (Decimal("12.5"), "USD", "$12.50"),
    (Decimal("1234.5"), "USD", "$1,234.50"),
    (Decimal("1000"), "JPY", "¥1,000"),
])
def test_format_money(amount, currency, shown):
    assert format_money(amount, currency) == shown


# --- periods -----------------------------------------------------------------------------------

def _local(tz, *args) -> datetime:
    """A wall-clock moment in tz, as UTC (what Period.window returns)."""
    return datetime(*args, tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize("tz", [UTC, NEW_YORK, SYDNEY, KOLKATA], ids=str)
def test_day_window_is_local_midnight_to_local_midnight(tz):
    at = datetime(2026, 6, 10, 15, 30, tzinfo=tz)
    start, end = Period.DAY.window(at=at, tz=tz)
    assert (start, end) == (_local(tz, 2026, 6, 10), _local(tz, 2026, 6, 11))
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
    assert start <= at < end


@pytest.mark.parametrize("at, tz, local_day, hours", [
    # New York springs forward on Sunday 2026-03-08: that day is 23 hours long.
    (datetime(2026, 3, 8, 12, tzinfo=UTC), NEW_YORK, date(2026, 3, 8), 23),
    # ...and falls back on Sunday 2026-11-01: 25 hours.
    (datetime(2026, 11, 1, 12, tzinfo=UTC), NEW_YORK, date(2026, 11, 1), 25),
    # Sydney falls back on 2026-04-05 (25 h) and springs forward on 2026-10-04 (23 h).
    (datetime(2026, 4, 5, 2, tzinfo=UTC), SYDNEY, date(2026, 4, 5), 25),
    (datetime(2026, 10, 4, 2, tzinfo=UTC), SYDNEY, date(2026, 10, 4), 23),
    # Kolkata has no DST and a half-hour offset.
    (datetime(2026, 3, 8, 12, tzinfo=UTC), KOLKATA, date(2026, 3, 8), 24),
    (datetime(2026, 3, 8, 12, tzinfo=UTC), UTC, date(2026, 3, 8), 24),
])
def test_day_window_on_dst_change_days(at, tz, local_day, hours):
    start, end = Period.DAY.window(at=at, tz=tz)
    assert end - start == timedelta(hours=hours)
    assert start.astimezone(tz).replace(tzinfo=None) == datetime.combine(local_day, datetime.min.time())
    assert end.astimezone(tz).replace(tzinfo=None) == datetime.combine(local_day + timedelta(days=1),
                                                                         datetime.min.time())
    assert start <= at < end


def test_day_window_follows_the_local_date_not_the_utc_date():
    # 23:30 UTC on the 9th is already the 10th in Sydney and Kolkata, still the 9th in New York.
    at = datetime(2026, 6, 9, 23, 30, tzinfo=UTC)
    assert Period.DAY.window(at=at, tz=SYDNEY)[0] == _local(SYDNEY, 2026, 6, 10)
    assert Period.DAY.window(at=at, tz=KOLKATA)[0] == _local(KOLKATA, 2026, 6, 10)
    assert Period.DAY.window(at=at, tz=NEW_YORK)[0] == _local(NEW_YORK, 2026, 6, 9)
    assert Period.DAY.window(at=at, tz=UTC)[0] == datetime(2026, 6, 9, tzinfo=UTC)


@pytest.mark.parametrize("tz", [UTC, NEW_YORK, SYDNEY, KOLKATA], ids=str)
@pytest.mark.parametrize("day", range(2, 9))  # Monday 2026-03-02 .. Sunday 2026-03-08
def test_week_starts_monday_local(tz, day):
    at = datetime(2026, 3, day, 12, tzinfo=tz)
    start, end = Period.WEEK.window(at=at, tz=tz)
    assert start == _local(tz, 2026, 3, 2)
    assert end == _local(tz, 2026, 3, 9)
    assert start.astimezone(tz).weekday() == 0


def test_week_containing_the_new_york_spring_forward_is_an_hour_short():
    start, end = Period.WEEK.window(at=datetime(2026, 3, 8, 23, tzinfo=NEW_YORK), tz=NEW_YORK)
    assert end - start == timedelta(days=7) - timedelta(hours=1)
    # The Sunday evening still belongs to that week; Monday morning starts the next one.
    next_start, _ = Period.WEEK.window(at=datetime(2026, 3, 9, 0, 1, tzinfo=NEW_YORK), tz=NEW_YORK)
    assert next_start == end


def test_week_boundary_in_sydney_is_sunday_afternoon_utc():
    # Monday 00:00 in Sydney (AEDT, +11) is Sunday 13:00 UTC.
    sunday_utc = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    start, _ = Period.WEEK.window(at=sunday_utc, tz=SYDNEY)
    assert start == sunday_utc
    _, end = Period.WEEK.window(at=sunday_utc - timedelta(microseconds=1), tz=SYDNEY)
    assert end == sunday_utc


@pytest.mark.parametrize("tz", [UTC, NEW_YORK, SYDNEY, KOLKATA], ids=str)
@pytest.mark.parametrize("at, first, after", [
    ((2026, 1, 31, 23), (2026, 1, 1), (2026, 2, 1)),
    ((2026, 1, 1, 0), (2026, 1, 1), (2026, 2, 1)),
    ((2028, 2, 29, 12), (2028, 2, 1), (2028, 3, 1)),  # leap year
    ((2026, 2, 28, 12), (2026, 2, 1), (2026, 3, 1)),
    ((2026, 12, 31, 23, 59), (2026, 12, 1), (2027, 1, 1)),  # into next year
    ((2026, 3, 15), (2026, 3, 1), (2026, 4, 1)),
])
def test_month_window(tz, at, first, after):
    moment = datetime(*at, tzinfo=tz)
    start, end = Period.MONTH.window(at=moment, tz=tz)
    assert start == _local(tz, *first)
    assert end == _local(tz, *after)
    assert start <= moment < end


def test_leap_february_is_29_days_in_utc():
    start, end = Period.MONTH.window(at=datetime(2028, 2, 10, tzinfo=UTC), tz=UTC)
    assert end - start == timedelta(days=29)


@pytest.mark.parametrize("text, period", [
    ("day", Period.DAY), ("daily", Period.DAY), ("days", Period.DAY),
    ("week", Period.WEEK), ("weekly", Period.WEEK), ("weeks", Period.WEEK), ("wk", Period.WEEK),
    ("month", Period.MONTH), ("monthly", Period.MONTH), ("months", Period.MONTH), ("mo", Period.MONTH),
    (" Week ", Period.WEEK), ("MONTHLY", Period.MONTH),
])
def test_parse_period_accepts(text, period):
    assert parse_period(text) is period


@pytest.mark.parametrize("text", ["year", "yearly", "years", "", "fortnight", "w", "weekday"])
def test_parse_period_rejects(text):
    assert parse_period(text) is None


def test_period_words():
    assert [p.this for p in Period] == ["today", "this week", "this month"]
    assert [p.adjective for p in Period] == ["daily", "weekly", "monthly"]


# --- cases -------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _case(**changes) -> Case:
    fields = dict(workspace="W1", id=case_id(1001), owner="U1", owner_name="Amy",
                  what_happened="cold soup, table 4", customer="table 4", opened_at=T0)
    fields.update(changes)
    return Case(**fields)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _up_to_compensate() -> Case:
    case = _case()
    for i, step in enumerate((Step.APOLOGISE, Step.EMPATHISE, Step.FIX), start=1):
        case = case.complete(step, at=_at(i), note=f"note {i}")
    return case


def test_checklist_order():
    assert CHECKLIST == (Step.APOLOGISE, Step.EMPATHISE, Step.FIX, Step.COMPENSATE, Step.FOLLOW_UP)
    assert [next_step(s) for s in CHECKLIST] == [*CHECKLIST[1:], None]
    assert case_id(1001) == "R-1001"


def test_complete_in_order_then_compensate_and_follow_up_closes_the_case():
    case = _case()
    assert case.current_step is Step.APOLOGISE and not case.is_closed
    case = case.complete(Step.APOLOGISE, at=_at(1), note="  I'm so sorry  ")
    assert case.current_step is Step.EMPATHISE
    assert case.note(Step.APOLOGISE) == "I'm so sorry"
    case = case.complete(Step.EMPATHISE, at=_at(2), note="they waited 40 min")
    case = case.complete(Step.FIX, at=_at(3), note="new soup")
    assert case.current_step is Step.COMPENSATE
    case = case.compensate(Compensation(kind="voucher", amount=Decimal("10"), currency="USD"), at=_at(4))
    assert case.current_step is Step.FOLLOW_UP
    assert case.compensation == Compensation(kind="voucher", amount=Decimal("10"), currency="USD")
    assert not case.is_closed and case.time_to_recover is None
    case = case.follow_up(date(2026, 3, 5), at=_at(5))
    assert case.current_step is None
    assert case.is_closed and case.closed_at == _at(5)
    assert case.follow_up_on == date(2026, 3, 5)
    assert case.time_to_recover == timedelta(minutes=5)
    assert list(case.done) == list(CHECKLIST)
    assert [case.done[s].at for s in CHECKLIST] == [_at(i) for i in range(1, 6)]


def test_a_change_returns_a_new_case_and_leaves_the_old_one_alone():
    before = _case()
    after = before.complete(Step.APOLOGISE, at=_at(1))
    assert before.done == {} and before.current_step is Step.APOLOGISE
    assert after is not before and Step.APOLOGISE in after.done


@pytest.mark.parametrize("step", [Step.EMPATHISE, Step.FIX])
def test_out_of_order_step_is_refused(step):
    with pytest.raises(StepNotOpen) as refused:
        _case().complete(step, at=_at(1))
    assert "apologise" in refused.value.sentence and "R-1001" in refused.value.sentence


def test_compensate_before_fix_is_refused():
    case = _case().complete(Step.APOLOGISE, at=_at(1))
    with pytest.raises(StepNotOpen) as refused:
        case.compensate(Compensation(kind="voucher", amount=Decimal(5), currency="USD"), at=_at(2))
    assert "empathise" in refused.value.sentence


def test_follow_up_before_compensate_is_refused():
    with pytest.raises(StepNotOpen) as refused:
        _up_to_compensate().follow_up(None, at=_at(9))
    assert "compensate" in refused.value.sentence


def test_a_done_step_again_is_refused():
    case = _case().complete(Step.APOLOGISE, at=_at(1))
    with pytest.raises(StepNotOpen) as refused:
        case.complete(Step.APOLOGISE, at=_at(2), note="again")
    assert "already done" in refused.value.sentence
    compensated = _up_to_compensate().compensate(
        Compensation(kind="voucher", amount=Decimal(5), currency="USD"), at=_at(4))
    with pytest.raises(StepNotOpen):
        compensated.compensate(Compensation(kind="refund", amount=Decimal(6), currency="USD"), at=_at(5))


def test_nothing_needed_then_no_follow_up_closes_the_case():
    case = _up_to_compensate().compensate(Compensation(kind="", amount=Decimal(0), currency="USD"), at=_at(4))
    assert case.compensation.nothing
    case = case.follow_up(None, at=_at(5))
    assert case.is_closed and case.follow_up_on is None and case.current_step is None


def test_complete_refuses_the_steps_with_their_own_methods():
    with pytest.raises(ValueError):
        _up_to_compensate().complete(Step.COMPENSATE, at=_at(4))


def test_check_actor_names_the_owner_and_the_case():
    case = _case()
    case.check_actor("U1")  # the owner may act
    with pytest.raises(NotYourCase) as refused:
        case.check_actor("U2")
    assert "Amy" in refused.value.sentence
    assert "R-1001" in refused.value.sentence


def _closed() -> Case:
    return (_up_to_compensate()
            .compensate(Compensation(kind="voucher", amount=Decimal(5), currency="USD"), at=_at(4))
            .follow_up(None, at=_at(5)))


@pytest.mark.parametrize("action", [
    lambda c: c.complete(Step.APOLOGISE, at=_at(9)),
    lambda c: c.complete(Step.EMPATHISE, at=_at(9)),
    lambda c: c.complete(Step.FIX, at=_at(9)),
    lambda c: c.compensate(Compensation(kind="voucher", amount=Decimal(1), currency="USD"), at=_at(9)),
    lambda c: c.follow_up(date(2026, 4, 1), at=_at(9)),
    lambda c: c.check_step(Step.FOLLOW_UP),
], ids=["apologise", "empathise", "fix", "compensate", "follow_up", "check_step"])
def test_any_action_on_a_closed_case_is_refused(action):
    case = _closed()
    with pytest.raises(StepNotOpen) as refused:
        action(case)
    assert "closed" in refused.value.sentence and "R-1001" in refused.value.sentence


def test_posted_remembers_message_refs():
    case = _case().posted(card=MessageRef("C1", "1.1"))
    case = case.posted(step=Step.APOLOGISE, ref=MessageRef("C1", "1.2"))
    case = case.posted(summary=MessageRef("C9", "9.9"))
    assert case.card == MessageRef("C1", "1.1")
    assert case.step_posts == {Step.APOLOGISE: MessageRef("C1", "1.2")}
    assert case.summary == MessageRef("C9", "9.9")
    assert case.posted() == case


# --- allowances --------------------------------------------------------------------------------

def _allowance(*, limit="25", budget: str | None = "100", period=Period.WEEK, spent="0", currency="USD"):
    role = Role(workspace="W1", name="server", limit=Decimal(limit),
                budget=None if budget is None else Budget(amount=Decimal(budget), period=period))
    return Allowance(role=role, spent=Decimal(spent), currency=currency)


def test_describe_when_the_limit_is_the_most():
    allowance = _allowance(spent="40")
    assert allowance.describe() == "You can give up to $25 here · $60 left this week"
    assert allowance.most == Decimal(25) and allowance.left == Decimal(60)


def test_describe_names_the_period():
    assert _allowance(period=Period.DAY, spent="10").describe() == "You can give up to $25 here · $90 left today"
    assert _allowance(period=Period.MONTH, budget="500").describe() == \
        "You can give up to $25 here · $500 left this month"


def test_when_the_budget_binds():
    allowance = _allowance(spent="90")
    assert allowance.most == Decimal(10)
    assert allowance.describe() == "You can give up to $10 here · $10 left this week"
    allowance.check(Decimal(10))
    with pytest.raises(OverAllowance) as refused:
        allowance.check(Decimal(15))
    sentence = refused.value.sentence
    assert "$15" in sentence
    assert "$10 left" in sentence and "weekly budget" in sentence
    assert "You can give up to $10" in sentence


def test_when_the_per_case_limit_binds():
    allowance = _allowance(spent="40")
    with pytest.raises(OverAllowance) as refused:
        allowance.check(Decimal(30))
    sentence = refused.value.sentence
    assert "$30" in sentence
    assert "limit of $25 per case" in sentence and "server" in sentence
    assert "You can give up to $25" in sentence


def test_a_used_up_budget():
    allowance = _allowance(spent="100")
    assert allowance.most == 0 and allowance.left == 0
    assert allowance.describe() == ("Your weekly budget is used up ($100 of $100 given) · "
                                   "choose “Nothing needed”, or ask a manager")
    with pytest.raises(OverAllowance) as refused:
        allowance.check(Decimal(1))
    sentence = refused.value.sentence
    assert "weekly budget is used up" in sentence
    assert "$100 of $100" in sentence
    assert "Nothing needed" in sentence


def test_overspent_budget_counts_as_used_up_not_negative():
    # A budget lowered mid-week can leave someone past it: nothing left, never a negative amount.
    allowance = _allowance(budget="50", spent="80")
    assert allowance.left == 0 and allowance.most == 0
    with pytest.raises(OverAllowance) as refused:
        allowance.check(Decimal("0.01"))
    assert "used up" in refused.value.sentence


def test_a_role_without_a_budget_describes_only_the_limit():
    allowance = _allowance(budget=None, spent="5000")
    assert allowance.left is None
    assert allowance.describe() == "You can give up to $25 here"
    allowance.check(Decimal(25))
    with pytest.raises(OverAllowance) as refused:
        allowance.check(Decimal("25.01"))
    assert "limit of $25 per case" in refused.value.sentence


@pytest.mark.parametrize("spent", ["0", "40", "75", "87.50"])
def test_an_amount_equal_to_the_most_is_allowed_and_a_cent_more_is_not(spent):
    allowance = _allowance(spent=spent)
    allowance.check(allowance.most)
    with pytest.raises(OverAllowance):
        allowance.check(allowance.most + Decimal("0.01"))


def test_allowance_in_another_currency():
    allowance = _allowance(limit="3000", budget="10000", spent="2500", currency="JPY")
    assert allowance.describe() == "You can give up to ¥3,000 here · ¥7,500 left this week"


# --- commands ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, command", [
    ("", AskForDetails()),
    ("   ", AskForDetails()),
    ("list", ListMine()),
    ("  LIST ", ListMine()),
    ("help", Help()),
    ("Help", Help()),
    ("list of complaints", OpenCase("list of complaints")),
    ("help table 4, the soup is cold", OpenCase("help table 4, the soup is cold")),
    ("  cold soup, table 4  ", OpenCase("cold soup, table 4")),
    ("admin limits", ShowLimits()),
    ("ADMIN Limits", ShowLimits()),
    ("admin limit server 25 100/week", SetLimit(role="server", limit="25", budget="100/week")),
    ("admin limit server 25", SetLimit(role="server", limit="25", budget=None)),
    ("admin limit server 25 none", SetLimit(role="server", limit="25", budget="none")),
    ("admin role <@U1|amy> server", AssignRole(person="<@U1|amy>", role="server")),
    ("admin channel <#C1|recovery>", SetChannel(channel="<#C1|recovery>")),
    ("admin channel here", SetChannel(channel="here")),
])
def test_parse(text, command):
    assert parse(text) == command


def test_parse_none_asks_for_details():
    assert parse(None) == AskForDetails()


@pytest.mark.parametrize("text, usage", [
    ("admin limit server", "admin limit <role> <per-case>"),
    ("admin limit", "admin limit <role> <per-case>"),
    ("admin limit server 25 100/week extra", "admin limit <role> <per-case>"),
    ("admin role <@U1|amy>", "admin role <@person> <role>"),
    ("admin channel", "admin channel <#channel>"),
    ("admin channel <#C1> <#C2>", "admin channel <#channel>"),
    ("admin limits please", "admin limits"),
])
def test_bad_admin_command_gives_its_usage(text, usage):
    with pytest.raises(BadCommand) as refused:
        parse(text)
    sentence = refused.value.sentence
    assert sentence.startswith("That command ")
    assert f"Usage: `/recover {usage}" in sentence


@pytest.mark.parametrize("text", ["admin nonsense", "admin", "ADMIN", "admin list"])
def test_unknown_admin_command_lists_the_admin_commands(text):
    with pytest.raises(BadCommand) as refused:
        parse(text)
    sentence = refused.value.sentence
    assert sentence.startswith("Admin commands:")
    for spec in commands.COMMANDS:
        assert (f"/recover {spec.usage}" in sentence) == spec.admin, spec.usage


def test_the_usage_uses_the_platform_prefix():
    with pytest.raises(BadCommand) as refused:
        parse("admin limit server", prefix="recover")
    assert "Usage: `recover admin limit <role>" in refused.value.sentence
    assert "/recover" not in refused.value.sentence


def test_help_lists_every_command_the_parser_routes():
    text = help_text()
    assert commands.COMMANDS  # the registry is not empty
    for spec in commands.COMMANDS:
        assert f"`/recover {spec.usage}` — {spec.summary}" in text, spec.usage
    assert "`/recover <what happened>`" in text and "`/recover`" in text
    admin = help_text(admin_only=True)
    for spec in commands.COMMANDS:
        assert (spec.usage in admin) == spec.admin, spec.usage
    lines = help_text(prefix="recover").splitlines()
    assert len(lines) == len(commands.COMMANDS) + 2  # + the two ways to open a case
    assert all(line.startswith("`recover") for line in lines)


def _example_args(spec) -> list[str] | None:
    """Arguments that spec's builder accepts, found by trying 0..3 placeholders."""
    for count in range(4):
        for args in (["x" + str(i) for i in range(count)], ["x" + str(i) for i in range(count - 1)] + ["on"]):
            try:  # the second: a switch such as `admin manager <role> on|off`
                spec.build(args)
            except ValueError:
                continue
            return args
    return None


@pytest.mark.parametrize("spec", commands.COMMANDS, ids=lambda s: s.usage)
def test_every_documented_command_is_routed_not_opened_as_a_case(spec):
    # Help cannot drift from routing: each spec's words, as a person types them, reach that spec.
    args = _example_args(spec)
    assert args is not None, f"no argument count satisfies {spec.usage}"
    typed = " ".join([*spec.words, *args])
    assert parse(typed) == spec.build(args)
    assert not isinstance(parse(typed), (OpenCase, AskForDetails))


_VOCABULARY = ["admin", "ADMIN", "limit", "limits", "role", "channel", "list", "help", "server", "25",
               "100/week", "none", "<@U1|amy>", "<#C1|recovery>", "here", "-", "$", "/", "soup", "é", "🍲",
               "\t", "\n", "  ", "\u00a0", "\u2003", "'", '"', "`", ""]


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.3:  # raw characters, including control and odd unicode
        return "".join(chr(rng.choice([rng.randrange(0, 0x80), rng.randrange(0x80, 0x3000)]))
                       for _ in range(rng.randrange(0, 20)))
    words = [rng.choice(_VOCABULARY) for _ in range(rng.randrange(0, 6))]
    if rng.random() < 0.4:  # aim at the admin grammar, whose builders can refuse
        words = [rng.choice(["admin", "Admin"]), rng.choice(["limit", "limits", "role", "channel", "x"]), *words]
    return rng.choice([" ", "  ", "\t"]).join(words)


def test_parse_never_raises_anything_but_bad_command():
    rng = random.Random(20260308)
    kinds = set()
    for _ in range(600):
        text = _random_text(rng)
        try:
            result = parse(text)
        except BadCommand as refused:
            kinds.add(BadCommand)
            assert text.split()[0].lower() == "admin", text
            assert refused.sentence
            continue
        kinds.add(type(result))
        words = text.split()
        if not words:
            assert result == AskForDetails(), repr(text)
        elif words[0].lower() == "admin":
            assert isinstance(result, (ShowLimits, SetLimit, AssignRole, SetChannel)), repr(text)
        elif len(words) == 1 and words[0].lower() in ("list", "help"):
            assert result in (ListMine(), Help()), repr(text)
        else:
            assert result == OpenCase(text.strip()), repr(text)
    # The generator reached every branch, so the loop above checked each of them.
    assert {BadCommand, AskForDetails, OpenCase, ListMine, Help, ShowLimits, SetLimit, AssignRole,
            SetChannel} <= kinds, kinds
