"""The weekly digest as Block Kit (Slack) and as an Adaptive Card 1.5 (Teams): render only.

Names and root causes are what people typed: escaped for Slack, TextRuns (no markdown) for Teams.
"""

from datetime import timedelta

from bot.digest import Digest, Person
from bot.money import format_money
from cards import teams
from cards.text import clip, escape, safe
from cards.words import duration

TITLE = "Weekly recovery digest"
ROLES_LISTED = 15  # most given first; keeps a Teams card under its 28 KB


def _took(median: timedelta | None) -> str:
    return duration(median.total_seconds()) if median is not None else "—"


def _days(digest: Digest, tz) -> str:
    first = digest.since.astimezone(tz).date()
    last = (digest.until.astimezone(tz) - timedelta(seconds=1)).date()
    return f"{first:%a} {first.day} {first:%b} – {last:%a} {last.day} {last:%b %Y}"


def _money(digest: Digest, amount) -> str:
    return format_money(amount, digest.currency)


def lines(digest: Digest, *, tz) -> dict[str, list[str]]:
    """The digest's facts as plain lines, by heading (each platform escapes or styles them)."""
    spend = []
    for role in sorted(digest.spend, key=lambda r: -r.spent):  # stable: by name among equals
        if not role.spent and role.limit is None:
            continue
        limits = []
        if role.limit is not None:
            limits.append(f"{_money(digest, role.limit)} per case")
        if role.budget is not None:
            limits.append(f"{_money(digest, role.budget)} per person per {role.period}")
        spend.append(f"{role.role}: {_money(digest, role.spent)} given ({role.gifts})"
                     + (f" · limit {', '.join(limits)}" if limits else ""))
    if len(spend) > ROLES_LISTED:
        spend = [*spend[:ROLES_LISTED], f"…and {len(spend) - ROLES_LISTED} more roles"]
    causes = [f"{cause} ({n})" for cause, n in digest.root_causes]
    if digest.unrecorded_causes:
        causes.append(f"not recorded ({digest.unrecorded_causes})")

    def person(p: Person, what: str) -> str:
        return f"{p.name}: {what}"
    return {
        "Recoveries": [f"{digest.closed} closed · {digest.opened} opened · median time to recover "
                       f"{_took(digest.median)} · {_money(digest, digest.spent)} given"],
        "Spend by role": spend or ["nothing given"],
        "Top root causes": causes or ["none recorded"],
        "Repeat customers": [f"{name} ({n} cases)" for name, n in digest.repeat_customers] or ["none"],
        "Recovered most": [person(p, f"{p.recoveries} recoveries") for p in digest.most] or ["—"],
        "Recovered fastest": [person(p, f"median {_took(p.median)} over {p.recoveries}") for p in digest.fastest]
        or ["— (two recoveries or more)"],
        "Recognised by managers": [person(p, f"{p.recognitions} time(s)") for p in digest.recognised] or ["—"],
    }


def fallback(digest: Digest, *, tz) -> str:
    return (f"{TITLE}, {_days(digest, tz)}: {digest.closed} recoveries, {_money(digest, digest.spent)} given, "
            f"median time to recover {_took(digest.median)}")


def slack(digest: Digest, *, tz, chart_below: bool = True) -> tuple[str, list[dict]]:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(TITLE, 150), "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(_days(digest, tz))}]},
    ]
    for heading, items in lines(digest, tz=tz).items():
        body = "\n".join(f"• {safe(item, 300)}" for item in items)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(f"*{heading}*\n{body}", 3000)}})
    if chart_below:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                         "text": "Chart: spend vs budget by role, recoveries per day "
                                                                 "(in the thread)."}]})
    return escape(fallback(digest, tz=tz)), blocks


def teams_card(digest: Digest, *, tz, chart_url: str | None) -> tuple[str, dict]:
    body = [teams._words(TITLE, weight="Bolder", size="Large"), teams._words(_days(digest, tz), subtle=True)]
    for heading, items in lines(digest, tz=tz).items():
        body.append(teams._words(heading, weight="Bolder", spacing="Medium"))
        body += [teams._typed(item, chars=300, wire=1200) for item in items]
    if chart_url:
        body.append({"type": "Image", "url": chart_url, "altText": "Spend vs budget by role, and recoveries per day",
                     "size": "Stretch"})
    text = teams._notify(fallback(digest, tz=tz))
    return text, teams._card(body, fallback=text)
