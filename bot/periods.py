"""Budget periods, computed in the workspace's time zone.

"This week" for a restaurant in Sydney starts at Monday 00:00 in Sydney, not in UTC.
"""

from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def this(self) -> str:
        """How a person says the current one: "today", "this week", "this month"."""
        return "today" if self is Period.DAY else f"this {self.value}"

    @property
    def adjective(self) -> str:
        return {"day": "daily", "week": "weekly", "month": "monthly"}[self.value]

    def window(self, *, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The [start, end) of the period containing `at`, as UTC datetimes."""
        local = at.astimezone(tz).date()
        if self is Period.DAY:
            first, after = local, local + timedelta(days=1)
        elif self is Period.WEEK:
            first = local - timedelta(days=local.weekday())  # Monday
            after = first + timedelta(days=7)
        else:
            first = local.replace(day=1)
            after = (first + timedelta(days=32)).replace(day=1)
        return _local_midnight(first, tz), _local_midnight(after, tz)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def parse_period(text: str) -> Period | None:
    """"week", "weekly", "wk" → Period.WEEK; None when it is not a period we know."""
    word = text.strip().lower()
    for period in Period:
        if word in (period.value, period.adjective, period.value + "s"):
            return period
    return {"wk": Period.WEEK, "mo": Period.MONTH, "daily": Period.DAY}.get(word)
