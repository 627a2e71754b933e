"""How Amends says things on every platform: step names, durations, dates, progress, what was given.

Plain text: each platform's builder escapes or styles it as its surface needs.
"""

from datetime import date

from bot.cases import Case
from bot.checklist import CHECKLIST, Step
from bot.money import format_money

STEP_NAMES = {
    Step.APOLOGISE: "Apologise",
    Step.EMPATHISE: "Empathise",
    Step.FIX: "Fix",
    Step.COMPENSATE: "Compensate",
    Step.FOLLOW_UP: "Follow up",
}


def duration(seconds: float) -> str:
    """"45 s", "1 min 40 s", "2 h 5 min", "3 d 4 h"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def day(on: date) -> str:
    return f"{on:%a} {on.day} {on:%b %Y}"


def given(case: Case, *, with_code: bool = False) -> str:
    """"voucher · $15" ("voucher · $15 USD" for managers), "nothing needed", or "—" before the compensate step."""
    if case.compensation is None:
        return "—"
    if case.compensation.nothing:
        return "nothing needed"
    money = format_money(case.compensation.amount, case.compensation.currency)
    return f"{case.compensation.kind} · {money}" + (f" {case.compensation.currency}" if with_code else "")


def progress(case: Case) -> str:
    marks = []
    for step in CHECKLIST:
        mark = "✅" if step in case.done else ("▶️" if step == case.current_step else "◻️")
        marks.append(f"{mark} {STEP_NAMES[step]}")
    return "   ".join(marks)


def top_up_status(case: Case, currency: str) -> str:
    """Where a top-up request stands: "Amy asks for $40 on R-1001 · approved by Ben"."""
    top_up = case.top_up
    if top_up is None:
        return ""
    line = f"{case.owner_name} asks for {format_money(top_up.amount, currency)} on {case.id}"
    if top_up.status == "pending" and (Step.COMPENSATE in case.done or case.is_closed):
        return line + f" · settled without waiting ({given(case)})"  # nothing left for a manager to decide
    if top_up.status == "pending":
        return line + " · waiting for a manager"
    return line + f" · {top_up.status} by {top_up.decided_by_name or top_up.decided_by}"


# A follow-up reminder for a case whose customer reference retention erased (bot/retention.py).
ERASED_NOTE = ("The customer's details were erased under your workspace's retention rule, so I can't say whom to "
               "call: look the case up in your own records.")


def recovered_in(case: Case) -> str:
    """"25 min"; a reopened case: "1 d 2 h (reopened once; 45 min of it recovering)", so the wait for the
    follow-up that reopened it isn't read as slowness (learn, don't punish). "—" while open."""
    from bot.followups import recovering_time  # the domain's measure
    if not case.is_closed:
        return "—"
    took = duration(case.time_to_recover.total_seconds())
    if not case.reopenings:
        return took
    times = "once" if len(case.reopenings) == 1 else f"{len(case.reopenings)} times"
    return f"{took} (reopened {times}; {duration(recovering_time(case).total_seconds())} of it recovering)"


def case_age(case: Case, *, now, clock) -> str:
    """"⏱️ open 25 min as of 14:30 (opened 14:05)": how long an open case has been open when the card was
    drawn, and when that was, so a card not redrawn since never claims a stale age as current ("" once closed).
    `clock(at)` writes a moment the way the platform shows it on each reader's own clock."""
    if case.is_closed:
        return ""
    return (f"⏱️ open {duration((now - case.opened_at).total_seconds())} as of {clock(now)} "
            f"(opened {clock(case.opened_at)})")
