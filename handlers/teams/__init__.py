"""Microsoft Teams: botbuilder's CloudAdapter and our ActivityHandler over the same domain as Slack.

All Teams glue lives in this package (botbuilder-python is being retired in favour of the
Microsoft 365 Agents SDK; a move should touch nothing else). app.py mounts it with one route:
`POST /api/messages` → `Teams.process`.
"""

import logging

from aiohttp import web
from botframework.connector.auth import BotFrameworkAuthentication

from bot.admins import Admins
from bot.recovery import Recovery
from bot.settings import Settings
from handlers.teams.adapter import TeamsAdapter, bot_framework_authentication
from handlers.teams.bot import AmendsBot
from handlers.teams.checklist import ChecklistHandlers
from handlers.teams.learning import attach as attach_learning
from handlers.teams.followups import attach as attach_follow_ups
from handlers.teams.commands import RecoverCommand
from handlers.teams.publish import TeamsPublisher
from handlers.teams.topups import TopUpHandlers

log = logging.getLogger(__name__)


class Teams:
    """The adapter and the bot, behind the one call the route makes."""

    def __init__(self, *, adapter: TeamsAdapter, bot: AmendsBot):
        self.adapter = adapter
        self.bot = bot

    async def process(self, request: web.Request) -> web.Response:
        return await self.adapter.process(request, self.bot)


def build_teams(*, settings: Settings, recovery: Recovery,
                auth: BotFrameworkAuthentication | None = None) -> Teams:
    """`auth` replaces the authentication built from settings (tests: a local OpenID issuer, no outbound tokens)."""
    adapter = TeamsAdapter(auth or bot_framework_authentication(settings))
    admins = Admins(store=recovery.store, configured=settings.admins)
    publisher = TeamsPublisher(recovery=recovery, admins=admins, adapter=adapter, app_id=settings.microsoft_app_id)
    bot = AmendsBot(recovery=recovery, publisher=publisher,
                    command=RecoverCommand(recovery=recovery, admins=admins, publisher=publisher),
                    checklist=ChecklistHandlers(recovery=recovery, publisher=publisher))
    adapter.on_turn_error = bot.on_error
    attach_follow_ups(recovery=recovery, publisher=publisher, checklist=bot.checklist)  # reminders and nudges
    attach_learning(recovery=recovery, publisher=publisher, checklist=bot.checklist)  # Recognise on summaries
    TopUpHandlers(recovery=recovery, publisher=publisher, admins=admins).register(bot.checklist)  # ask a manager
    return Teams(adapter=adapter, bot=bot)


__all__ = ["Teams", "build_teams"]
