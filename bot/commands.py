"""What people type after `/recover` (Slack) or `recover` (Teams), parsed into commands.

One registry both routes and documents the commands, so `help` can never disagree with them.
Amounts, roles and mentions are left as typed: the service checks them with the workspace's
currency, and the platform glue resolves mentions.
"""

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
class SetLocation:
    location: str  # a name a survey tool sends, e.g. "soho"
    channel: str  # a platform channel mention


Command = (OpenCase | AskForDetails | ListMine | Help | ShowLimits | SetLimit | AssignRole | SetChannel
           | SetLocation)


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


def _set_location(args: list[str]) -> Command:
    if len(args) != 2:
        raise ValueError("needs a location name and one channel")
    return SetLocation(location=args[0], channel=args[1])


COMMANDS: tuple[Spec, ...] = (
    Spec(("list",), "list", "your open cases", False, _no_args(ListMine())),
    Spec(("help",), "help", "this help", False, _no_args(Help())),
    Spec(("admin", "limits"), "admin limits", "show roles, limits and budgets", True, _no_args(ShowLimits())),
    Spec(("admin", "limit"), "admin limit <role> <per-case> [<budget>/<day|week|month>|none]",
         "create a role or change its limits, e.g. admin limit server 25 100/week", True, _set_limit),
    Spec(("admin", "role"), "admin role <@person> <role>", "assign a person to a role", True, _assign_role),
    Spec(("admin", "channel"), "admin channel <#channel>", "set the recovery channel for summaries",
         True, _set_channel),
    Spec(("admin", "location"), "admin location <name> <#channel>",
         "where a low survey score from that location opens a case (see README, CSAT)", True, _set_location),
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
