"""Block Kit for the App Home tab and the admin forms it opens: pure, from bot.home's values.

The Home is one view of at most 100 blocks; each list is clipped to what a section holds (3000
characters) and says how many more there are, so a busy workspace never makes Slack refuse it.
"""

from bot.cases import Case
from bot.home import Home, spend_line
from bot.periods import Period
from bot.roles import Role, describe_role
from cards.ids import Action, Field, Form
from cards.slack import SECTION_MAX, _button, _context, _modal, _plain, _section, _text_input
from cards.text import clip, escape, safe
from cards.words import STEP_NAMES, duration, given, recovered_in

HOME_BLOCKS_MAX = 100
MINE_SHOWN = 15
RECENT_SHOWN = 10
TEAM_SHOWN = 25
ROLES_SHOWN = 40
OPTIONS_MAX = 100  # Slack's limit for a static_select


def _listing(title: str, lines: list[str], *, empty: str, shown: int) -> dict:
    """A titled list in one section: as many lines as fit, then "…and N more"."""
    if not lines:
        return _section(f"*{title}*\n{empty}")
    kept, size = [], len(title) + 4
    for line in lines[:shown]:
        more = f"\n…and {len(lines) - len(kept) - 1} more"
        if size + len(line) + 1 + len(more) > SECTION_MAX:
            break
        kept.append(line)
        size += len(line) + 1
    text = f"*{title}*\n" + "\n".join(kept)
    if len(kept) < len(lines):
        text += f"\n…and {len(lines) - len(kept)} more"
    return _section(text)


def _typed(text: str, limit: int) -> str:
    """What a person typed, on one line of a list (a line break in it would start a new bullet), escaped."""
    return safe(" ".join((text or "").split()), limit)


def _case_name(case: Case, links: dict[str, str]) -> str:
    link = links.get(case.id)
    return f"<{link}|{case.id}>" if link else case.id


def home_view(home: Home, *, links: dict[str, str] | None = None) -> dict:
    """The Home tab: mine for everyone, the team's for managers, settings for admins."""
    links = links or {}
    allowance = home.allowance
    blocks: list[dict] = [
        {"type": "header", "text": _plain("Your recoveries")},
        _section(f"*{escape(allowance.describe())}*"),
        _context(f"Your role: {escape(describe_role(allowance.role, home.currency))}. Inside it, no approval needed."),
    ]
    mine = [f"• {_case_name(c, links)} · {_typed(c.what_happened, 80)} · next: "
            f"{STEP_NAMES[c.current_step] if c.current_step else 'closing'}" for c in home.open_cases]
    blocks.append(_listing("Your open cases", mine, empty="None. 🎉 Type `/recover what happened` to open one.",
                           shown=MINE_SHOWN))
    recent = [f"• {c.id} · {_typed(c.what_happened, 60)} · {safe(given(c), 80)} · "
              f"{recovered_in(c)}" for c in home.recent]
    blocks.append(_listing("Recovered by you in the last 30 days", recent, empty="None yet.", shown=RECENT_SHOWN))
    if home.team is not None:
        blocks += _team(home, links)
    if home.settings is not None:
        blocks += _settings(home)
    return {"type": "home", "blocks": blocks[:HOME_BLOCKS_MAX]}


def _team(home: Home, links: dict[str, str]) -> list[dict]:
    team = home.team
    took = duration(team.median_time_to_recover.total_seconds()) if team.median_time_to_recover else "—"
    blocks = [
        {"type": "divider"},
        {"type": "header", "text": _plain("Your team")},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Recoveries this week*\n{team.recoveries_this_week}"},
            {"type": "mrkdwn", "text": f"*Median time to recover*\n{took}"},
        ]},
    ]
    still_open = [f"• {_case_name(c, links)} · {_typed(c.what_happened, 60)} · "
                  f"{safe(c.owner_name, 40) if c.owner else 'waiting for someone to take it'} · "
                  f"open {duration(age.total_seconds())}" for c, age in team.open_cases]
    blocks.append(_listing(f"Open cases ({len(still_open)})", still_open, empty="None. 🎉", shown=TEAM_SHOWN))
    spend = [f"• *{escape(line.role.name)}*: {escape(spend_line(line, home.currency))}" for line in team.spend]
    blocks.append(_listing("Given this period, by role", spend, empty="No roles yet.", shown=ROLES_SHOWN))
    causes = [f"• {safe(cause, 120)} · {count}" for cause, count in team.root_causes]
    blocks.append(_listing("Top root causes (30 days)", causes, empty="None recorded yet.", shown=10))
    return blocks


def _settings(home: Home) -> list[dict]:
    settings = home.settings
    roles = [f"• {escape(describe_role(role, home.currency))}"
             + (" · *managing*" if role.name in settings.managing else "") for role in settings.roles]
    where = f"<#{settings.channel}>" if settings.channel else "not set"
    blocks = [
        {"type": "divider"},
        {"type": "header", "text": _plain("Settings (admins)")},
        _listing("Roles, limits and budgets", roles, empty="None.", shown=ROLES_SHOWN),
        _context(f"People without a role get *staff*. People in a *managing* role see the team and approve "
                 f"top-ups (mark a role in Edit roles and limits). Recovery channel: {where}"),
        _listing("Compensation catalogue", [f"• {safe(line, 200)}" for line in settings.catalogue], empty="Empty.",
                 shown=40),
        {"type": "actions", "elements": [
            _button("Edit roles and limits", Action.HOME_ROLES, "roles", style="primary"),
            _button("Assign a person", Action.HOME_ASSIGN, "assign"),
            _button("Recovery channel", Action.HOME_CHANNEL, "channel"),
            _button("Edit the catalogue", Action.HOME_CATALOGUE, "catalogue"),
        ]},
    ]
    return blocks


# --- the admin forms --------------------------------------------------------------------------

def _options(values: list[tuple[str, str]]) -> list[dict]:
    return [{"text": _plain(text, 75), "value": value[:150]} for text, value in values[:OPTIONS_MAX]]


def _select(field: Field, label: str, options: list[dict], *, initial: dict | None = None,
            placeholder: str = "Choose") -> dict:
    element = {"type": "static_select", "action_id": field.value, "options": options,
               "placeholder": _plain(placeholder, 150)}
    if initial is not None:
        element["initial_option"] = initial
    return {"type": "input", "block_id": field.value, "label": _plain(label, 2000), "element": element}


MANAGING_CHOICES = (("Leave as it is", "keep"), ("Managers: they see the team and approve top-ups", "on"),
                    ("Not managers", "off"))  # (what the admin reads, the value)


def roles_form(roles: list[Role], *, currency: str, managing: frozenset[str] = frozenset()) -> dict:
    """Create a role or change its limits: as `/recover admin limit <role> <per-case> [<budget>/<period>]`;
    and mark it managing or not, as `/recover admin manager <role> on|off`."""
    periods = _options([(f"per {p.value}", p.value) for p in Period])
    week = next(o for o in periods if o["value"] == Period.WEEK.value)
    choices = _options(list(MANAGING_CHOICES))
    current = "\n".join(f"• {escape(describe_role(role, currency))}" + (" · *managing*" if role.name in managing else "")
                        for role in roles[:ROLES_SHOWN])
    return _modal(Form.HOME_ROLES, "Roles and limits", [
        _section(clip(f"*Roles now*\n{current}" if current else "*No roles yet.*", SECTION_MAX)),
        _text_input(Field.HOME_ROLE_NAME, "Role (a new name creates it)", multiline=False, max_length=32,
                    placeholder="server, shift-lead"),
        _text_input(Field.HOME_PER_CASE, f"Most one case may cost ({currency})", multiline=False, max_length=20,
                    placeholder="e.g. 25"),
        _text_input(Field.HOME_BUDGET, f"Budget per person ({currency})", multiline=False,
                    max_length=20, optional=True, placeholder="e.g. 100, or none"),
        _select(Field.HOME_PERIOD, "Budget period", periods, initial=week),
        _context("Leave the budget empty to keep a role's current one; type *none* to remove it."),
        {"type": "input", "block_id": Field.HOME_MANAGING.value, "label": _plain("Are its people managers?", 2000),
         "element": {"type": "radio_buttons", "action_id": Field.HOME_MANAGING.value, "options": choices,
                     "initial_option": choices[0]}},
    ], {}, "Save")


def assign_form(roles: list[Role]) -> dict:
    """Give a person a role: the same as `/recover admin role @person <role>`."""
    options = _options([(role.name, role.name) for role in roles])
    return _modal(Form.HOME_ASSIGN, "Assign a role", [
        {"type": "input", "block_id": Field.HOME_PERSON.value, "label": _plain("Person", 2000),
         "element": {"type": "users_select", "action_id": Field.HOME_PERSON.value,
                     "placeholder": _plain("Pick someone", 150)}},
        _select(Field.HOME_ROLE, "Role", options, placeholder="Pick a role"),
    ], {}, "Assign")


def channel_form(current: str | None) -> dict:
    """Where recovery summaries go: the same as `/recover admin channel #channel`."""
    element = {"type": "conversations_select", "action_id": Field.HOME_CHANNEL.value,
               "placeholder": _plain("Pick a channel", 150),
               "filter": {"include": ["public", "private"], "exclude_bot_users": True}}
    if current:
        element["initial_conversation"] = current
    return _modal(Form.HOME_CHANNEL, "Recovery channel", [
        _context("Managers see a summary of every recovery there. Invite me to it first: `/invite @Amends`."),
        {"type": "input", "block_id": Field.HOME_CHANNEL.value, "label": _plain("Channel", 2000), "element": element},
    ], {}, "Save")


def catalogue_form(lines: tuple[str, ...]) -> dict:
    """Add one thing people can give, change one (its name typed again), or remove one."""
    return _modal(Form.HOME_CATALOGUE, "Catalogue", [
        _listing("What people can give now", [f"• {safe(line, 200)}" for line in lines], empty="Nothing yet.",
                 shown=len(lines)),
        _context("Type an item's name to change it, or tick Remove to take it out."),
        _text_input(Field.HOME_ITEM_NAME, "Name", multiline=False, max_length=40, placeholder="Free dessert"),
        _text_input(Field.HOME_ITEM_VALUE, "Default value, or a percent of the bill", multiline=False, max_length=20,
                    optional=True, placeholder="8, or 20%"),
        _text_input(Field.HOME_ITEM_EMOJI, "Emoji", multiline=False, max_length=16, optional=True, placeholder="🍰"),
        {"type": "input", "block_id": Field.HOME_ITEM_REMOVE.value, "optional": True, "label": _plain("Remove", 2000),
         "element": {"type": "checkboxes", "action_id": Field.HOME_ITEM_REMOVE.value, "options": [
             {"text": _plain("Remove this item instead", 75), "value": "remove"}]}},
    ], {}, "Save")


