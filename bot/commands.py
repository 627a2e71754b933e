"""What people type after `/recover` (Slack) or `recover` (Teams), parsed into commands.

One registry both routes and documents the commands, so `help` can never disagree with them.
Amounts, roles and mentions are left as typed: the service checks them with the workspace's
currency, and the platform glue resolves mentions.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import BadCommand


@dataclass(frozen=True)
class OpenCase:
    what_happened: str


@dataclass(frozen=True)
class AskForDetails:
    """`/recover` alone: ask for what happened in a form."""


@dataclass(frozen=True)
class ListMine:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class ShowLimits:
    pass


@dataclass(frozen=True)
class SetLimit:
    role: str
    limit: str
    budget: str | None  # "100/week", "none" to remove it, None to keep the current one


@dataclass(frozen=True)
class AssignRole:
    person: str  # a platform mention, resolved by the glue
    role: str


@dataclass(frozen=True)
class SetChannel:
    channel: str  # a platform channel mention, or "here"


@dataclass(frozen=True)
class ShowHome:
    """`home`: my cases and allowance; the team's for managers; settings for admins (Slack: the Home tab)."""


@dataclass(frozen=True)
class SetManaging:
    role: str
    managing: bool  # "on": the role's people are managers (see the team's recoveries, approve top-ups)


@dataclass(frozen=True)
class SetRootCauses:
    causes: str  # comma-separated, as typed (bot/learning.py checks it)


@dataclass(frozen=True)
class SetRetention:
    days: str  # as typed (bot/retention.py checks it)


@dataclass(frozen=True)
class ShowCatalogue:
    """`admin catalogue`: list the compensation catalogue."""


@dataclass(frozen=True)
class AddCatalogueItem:
    name: str
    value: str  # "8", "$8.50", "20%", or "" (bot/catalogue.py checks it)
    emoji: str


@dataclass(frozen=True)
class RemoveCatalogueItem:
    name: str


@dataclass(frozen=True)
class SetReminderHour:
    hour: str  # as typed (bot/followups.py checks it)


@dataclass(frozen=True)
class SetIdleMinutes:
    minutes: str  # as typed (bot/followups.py checks it)


@dataclass(frozen=True)
class SetLocation:
    location: str  # a name a survey tool sends, e.g. "soho"
    channel: str  # a platform channel mention


@dataclass(frozen=True)
class SendDigest:
    """`admin digest now`: the last seven days' digest to the recovery channel, now."""


@dataclass(frozen=True)
class SetDigest:
    words: tuple[str, ...]  # `off`, or a day and an hour, as typed (bot/digest.py checks them)


@dataclass(frozen=True)
class Export:
    dates: tuple[str, ...]  # none, one or two YYYY-MM-DD, as typed (bot/export.py checks them)


Command = (OpenCase | AskForDetails | ListMine | Help | ShowLimits | SetLimit | AssignRole | SetChannel
           | SetLocation | SetReminderHour | SetIdleMinutes | ShowHome | SetManaging | SetRootCauses | SetRetention
           | ShowCatalogue | AddCatalogueItem | RemoveCatalogueItem
           | SendDigest | SetDigest | Export)


@dataclass(frozen=True)
class Spec:
    words: tuple[str, ...]
    usage: str
    summary: str
    admin: bool
    build: Callable[[list[str]], Command]


def _no_args(command: Command) -> Callable[[list[str]], Command]:
    def build(args: list[str]) -> Command:
        if args:
            raise ValueError("takes no arguments")
        return command
    return build


def _set_limit(args: list[str]) -> Command:
    if len(args) not in (2, 3):
        raise ValueError("needs a role and a per-case limit")
    return SetLimit(role=args[0], limit=args[1], budget=args[2] if len(args) == 3 else None)


def _assign_role(args: list[str]) -> Command:
    if len(args) != 2:
        raise ValueError("needs a person and a role")
    return AssignRole(person=args[0], role=args[1])


def _set_channel(args: list[str]) -> Command:
    if len(args) != 1:
        raise ValueError("needs one channel")
    return SetChannel(channel=args[0])


def _set_managing(args: list[str]) -> Command:
    if len(args) != 2 or args[1].lower() not in ("on", "off"):
        raise ValueError("needs a role and on or off")
    return SetManaging(role=args[0], managing=args[1].lower() == "on")


def _set_root_causes(args: list[str]) -> Command:
    if not args:
        raise ValueError("needs the causes, separated by commas")
    return SetRootCauses(causes=" ".join(args))


def _set_retention(args: list[str]) -> Command:
    if len(args) != 1:
        raise ValueError("needs a number of days")
    return SetRetention(days=args[0])


_QUOTES = "\"“”"
_EMOJI_WORD = re.compile(r"^:[a-z0-9_+'-]{1,30}:$")
_VALUE_WORD = re.compile(r"^[^\w\s]?[\d.,]+%?$|^[A-Za-z]{3}-?[\d.,]+$|^[^\w\s]?-.*\d")  # -8, £-8: refused


def _catalogue(args: list[str]) -> Command:
    """`admin catalogue`, `… add <name> [<value>|<NN>%] [<emoji>]`, `… remove <name>`. A name may be quoted
    ("Table for 2" 10) or end in = before its value (Free dessert=8); unquoted, a last word that looks like a
    value (8, $8.50, 20%) is the value and an emoji after it the emoji."""
    if not args:
        return ShowCatalogue()
    action, rest = args[0].lower(), " ".join(args[1:]).strip()
    if action == "remove":
        name = rest.strip(_QUOTES).strip()
        if not name:
            raise ValueError("needs the name of the item to remove")
        return RemoveCatalogueItem(name=name)
    if action != "add":
        raise ValueError("needs add or remove after catalogue (or nothing, to list it)")
    if rest[:1] in _QUOTES:
        name, _, tail = rest[1:].partition(next((q for q in _QUOTES if q in rest[1:]), '"'))
        words = tail.split()
    elif "=" in rest:
        name, _, tail = rest.partition("=")
        words = tail.split()
        if not words:
            raise ValueError("needs a value after =, e.g. Free dessert=8")
    else:
        words = rest.split()
        emoji = words.pop() if len(words) > 1 and _is_emoji(words[-1]) else ""
        value = words.pop() if len(words) > 1 and _VALUE_WORD.match(words[-1]) else ""
        return AddCatalogueItem(name=" ".join(words), value=value, emoji=emoji)
    if len(words) > 2 or (len(words) == 2 and not _is_emoji(words[1])):
        raise ValueError("takes a name, then an optional value and emoji")
    emoji = words.pop() if words and _is_emoji(words[-1]) and (len(words) == 2 or not _VALUE_WORD.match(words[0])) else ""
    return AddCatalogueItem(name=name.strip(), value=words[0] if words else "", emoji=emoji)


def _is_emoji(word: str) -> bool:
    return bool(_EMOJI_WORD.match(word)) or (len(word) <= 8 and not any(c.isalnum() or c in "$€£¥%.,-" for c in word))


def _digest(args: list[str]) -> Command:
    if [a.lower() for a in args] == ["now"]:
        return SendDigest()
    return SetDigest(words=tuple(args))


def _set_reminder_hour(args: list[str]) -> Command:
    if len(args) != 1:
        raise ValueError("needs one hour, 0 to 23")
    return SetReminderHour(hour=args[0])


def _set_idle_minutes(args: list[str]) -> Command:
    if len(args) != 1:
        raise ValueError("needs a number of minutes")
    return SetIdleMinutes(minutes=args[0])


def _set_location(args: list[str]) -> Command:
    if len(args) != 2:
        raise ValueError("needs a location name and one channel")
    return SetLocation(location=args[0], channel=args[1])


COMMANDS: tuple[Spec, ...] = (
    Spec(("list",), "list", "your open cases", False, _no_args(ListMine())),
    Spec(("help",), "help", "this help", False, _no_args(Help())),
    Spec(("home",), "home", "your cases and what you can give; managers also see the team's", False,
         _no_args(ShowHome())),
    Spec(("admin", "limits"), "admin limits", "show roles, limits and budgets", True, _no_args(ShowLimits())),
    Spec(("admin", "limit"), "admin limit <role> <per-case> [<budget>/<day|week|month>|none]",
         "create a role or change its limits, e.g. admin limit server 25 100/week", True, _set_limit),
    Spec(("admin", "role"), "admin role <@person> <role>", "assign a person to a role", True, _assign_role),
    Spec(("admin", "channel"), "admin channel <#channel>", "set the recovery channel for summaries",
         True, _set_channel),
    Spec(("admin", "manager"), "admin manager <role> on|off",
         "make a role's people managers (they see every recovery), or not", True, _set_managing),
    Spec(("admin", "digest"), "admin digest <monday..sunday> <hour 0-23> | off | now",
         "when the weekly digest goes to the recovery channel (default monday 9), or send one now", True, _digest),
    Spec(("admin", "export"), "admin export [YYYY-MM-DD] [YYYY-MM-DD]",
         "cases and ledger as CSV files (default: the last 30 days)", True, lambda args: Export(dates=tuple(args))),
    Spec(("admin", "location"), "admin location <name> <#channel>",
         "where a low survey score from that location opens a case (see README, CSAT)", True, _set_location),
    Spec(("admin", "reminders"), "admin reminders <hour 0-23>",
         "the hour follow-up reminders arrive on their day (default 10)", True, _set_reminder_hour),
    Spec(("admin", "idle"), "admin idle <minutes>",
         "nudge a case's owner once when it sits untouched this long (default 15)", True, _set_idle_minutes),
    Spec(("admin", "causes"), "admin causes <cause>, <cause>, …",
         "the root causes asked for on closing, e.g. admin causes food, wait, staff, other", True, _set_root_causes),
    Spec(("admin", "catalogue"), "admin catalogue [add <name> [<value>|<NN>%] [<emoji>] | remove <name>]",
         "show or edit what people can give, e.g. admin catalogue add Free dessert 8 🍰", True, _catalogue),
    Spec(("admin", "retention"), "admin retention <days>",
         "how long customer references and notes are kept (see README, Retention)", True, _set_retention),
)


def parse(text: str, *, prefix: str = "/recover") -> Command:
    """Parse the text after the command word. Anything that is not a known subcommand opens a case."""
    words = (text or "").split()
    if not words:
        return AskForDetails()
    first = words[0].lower()
    if first == "admin":
        for spec in COMMANDS:
            if spec.words[0] == "admin" and len(words) > 1 and words[1].lower() == spec.words[1]:
                try:
                    return spec.build(words[2:])
                except ValueError as why:
                    raise BadCommand(f"That command {why}. Usage: `{prefix} {spec.usage}`") from None
        raise BadCommand("Admin commands:\n" + help_text(prefix=prefix, admin_only=True))
    if len(words) == 1:
        for spec in COMMANDS:
            if spec.words == (first,):
                return spec.build([])
    return OpenCase(what_happened=text.strip())


def help_text(*, prefix: str = "/recover", admin_only: bool = False) -> str:
    """Usage lines generated from the registry that parse() routes with."""
    lines = [] if admin_only else [f"`{prefix} <what happened>` — open a case, e.g. `{prefix} cold soup, table 4`",
                                   f"`{prefix}` — open a case with a form"]
    for spec in COMMANDS:
        if spec.admin or not admin_only:
            lines.append(f"`{prefix} {spec.usage}` — {spec.summary}" + (" (admins)" if spec.admin and not admin_only else ""))
    return "\n".join(lines)
