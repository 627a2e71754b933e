"""`recover home` in Teams, which has no App Home tab: the Home's content as one Adaptive Card 1.5.

Same values as Slack's Home (bot/home.py), same clipping rules as cards/teams.py: what people
typed goes in TextRuns, and each list is cut short ("…and N more") so the activity stays under
Teams' 28 KB with the worst text. Admins get the commands that change settings, since a card
can't open Slack-style forms here.
"""

import json
from dataclasses import replace

from bot.home import Home, spend_line
from bot.roles import describe_role
from cards.teams import _card, _facts, _notify, _run, _typed, _words, fit
from cards.words import STEP_NAMES, duration, given, recovered_in

# How many of each list a card shows at most; fewer when the text is long (see home_card).
SHOWN = {"mine": 10, "recent": 8, "team": 12, "roles": 15, "catalogue": 15, "causes": 5}
CARD_BUDGET = 24 * 1024  # bytes of the card as JSON, leaving room under ACTIVITY_MAX for the activity around it


def _more(body: list[dict], total: int, shown: int) -> None:
    if total > shown:
        body.append(_words(f"…and {total - shown} more.", subtle=True))


def _line(code: str, typed: str, tail: str) -> dict:
    """`R-1001 · cold soup… · next: Fix`: the id and tail are ours, the middle is typed."""
    return {"type": "RichTextBlock", "inlines": [_run(code, weight="Bolder"), _run(" · "),
                                                 _run(fit(typed, chars=60, wire=360) or "—"),
                                                 _run(f" · {fit(tail, chars=120, wire=480)}", isSubtle=True)]}


def home_card(home: Home, *, channel_name: str | None = None, in_channel: bool = False) -> tuple[str, dict]:
    """Mine for everyone; the team's for managers; settings (as commands) for admins. In a channel
    (everyone there reads the answer) only mine, with a pointer to the 1:1 chat. Lists are cut
    shorter until the card fits in a Teams activity, whatever people typed."""
    private = home.is_manager and in_channel
    if private:
        home = replace(home, team=None, settings=None)
    for share in (1, 0.6, 0.4, 0.25, 0.1, 0):
        shown = {name: max(1, int(count * share)) for name, count in SHOWN.items()}
        text, card = _home_card(home, channel_name=channel_name, shown=shown, private=private)
        if len(json.dumps(card)) <= CARD_BUDGET:
            break
    return text, card


def _home_card(home: Home, *, channel_name: str | None, shown: dict[str, int], private: bool) -> tuple[str, dict]:
    allowance = home.allowance
    body = [
        _words("Your recoveries", weight="Bolder", size="Medium"),
        _words(allowance.describe(), weight="Bolder"),
        _words(f"Your role: {describe_role(allowance.role, home.currency)}. Inside it, no approval needed.",
               subtle=True),
        _words(f"Your open cases ({len(home.open_cases)})", weight="Bolder", spacing="Medium"),
    ]
    if not home.open_cases:
        body.append(_words("None. 🎉", subtle=True))
    for case in home.open_cases[:shown["mine"]]:
        body.append(_line(case.id, case.what_happened,
                          f"next: {STEP_NAMES[case.current_step] if case.current_step else 'closing'}"))
    _more(body, len(home.open_cases), shown["mine"])
    body.append(_words("Recovered by you in the last 30 days", weight="Bolder", spacing="Medium"))
    if not home.recent:
        body.append(_words("None yet.", subtle=True))
    for case in home.recent[:shown["recent"]]:
        body.append(_line(case.id, case.what_happened,
                          f"{given(case)} · {recovered_in(case)}"))
    _more(body, len(home.recent), shown["recent"])
    if private:
        body.append(_words("The team's numbers and settings are only shown in your 1:1 chat with Amends: "
                           "send recover home there.", subtle=True, spacing="Medium"))
    if home.team is not None:
        body += _team(home, shown)
    if home.settings is not None:
        body += _settings(home, channel_name, shown)
    text = _notify(f"Your Amends home: {len(home.open_cases)} open case(s). {allowance.describe()}")
    return text, _card(body, fallback=text)


def _team(home: Home, shown: dict[str, int]) -> list[dict]:
    team = home.team
    took = duration(team.median_time_to_recover.total_seconds()) if team.median_time_to_recover else "—"
    body = [
        _words("Your team", weight="Bolder", size="Medium", spacing="ExtraLarge"),
        _facts(("Recoveries this week", str(team.recoveries_this_week)), ("Median time to recover", took)),
        _words(f"Open cases ({len(team.open_cases)})", weight="Bolder", spacing="Medium"),
    ]
    if not team.open_cases:
        body.append(_words("None. 🎉", subtle=True))
    for case, age in team.open_cases[:shown["team"]]:
        who = case.owner_name if case.owner else "waiting for someone to take it"
        body.append({"type": "RichTextBlock", "inlines": [
            _run(case.id, weight="Bolder"), _run(" · "), _run(fit(case.what_happened, chars=60, wire=360) or "—"),
            _run(" · "), _run(fit(who, chars=40, wire=240) or "—"),
            _run(f" · open {duration(age.total_seconds())}", isSubtle=True)]})
    _more(body, len(team.open_cases), shown["team"])
    body.append(_words("Given this period, by role", weight="Bolder", spacing="Medium"))
    facts = [(line.role.name, spend_line(line, home.currency)) for line in team.spend[:shown["roles"]]]
    body.append(_facts(*facts) if facts else _words("No roles yet.", subtle=True))
    _more(body, len(team.spend), shown["roles"])
    body.append(_words("Top root causes (30 days)", weight="Bolder", spacing="Medium"))
    if not team.root_causes:
        body.append(_words("None recorded yet.", subtle=True))
    for cause, count in team.root_causes[:shown["causes"]]:
        body.append({"type": "RichTextBlock", "inlines": [_run(fit(cause, chars=120, wire=600)),
                                                          _run(f" · {count}", isSubtle=True)]})
    return body


def _settings(home: Home, channel_name: str | None, shown: dict[str, int]) -> list[dict]:
    settings = home.settings
    body = [_words("Settings (admins)", weight="Bolder", size="Medium", spacing="ExtraLarge")]
    for role in settings.roles[:shown["roles"]]:
        managing = " · managing" if role.name in settings.managing else ""
        body.append(_typed(describe_role(role, home.currency) + managing, chars=200, wire=1200))
    _more(body, len(settings.roles), shown["roles"])
    if channel_name is None:
        body.append(_words("Recovery channel: not set. Send @Amends recover admin channel here in that channel.",
                           subtle=True))
    else:
        body.append(_typed(channel_name, label="Recovery channel: ", chars=100, wire=600))
    body.append(_words("Compensation catalogue", weight="Bolder", spacing="Medium"))
    for line in settings.catalogue[:shown["catalogue"]]:
        body.append(_typed(line, chars=100, wire=600))
    _more(body, len(settings.catalogue), shown["catalogue"])
    body.append(_words("Change them with: recover admin limit <role> <per-case> [<budget>/<period>] · "
                       "recover admin role @person <role> · recover admin manager <role> on|off · "
                       "recover admin catalogue add <name> [<value>|<NN>%] [<emoji>] · recover admin catalogue "
                       "remove <name> · recover admin channel here · recover help", subtle=True, spacing="Medium"))
    return body
