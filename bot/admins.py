"""Who may run admin commands: the people named in AMENDS_ADMINS, plus those an admin granted it to.

Platform-neutral: people are whatever ids the platform glue uses (Slack user ids, Teams AAD
object ids). A platform may add its own admins on top (Slack: workspace admins and owners).
Grants live in the store, so they hold across restarts and processes.
"""

from bot.errors import NotAdmin
from bot.store import Store


class Admins:
    def __init__(self, *, store: Store, configured: frozenset[str]):
        self.store = store
        self.configured = configured

    async def is_admin(self, *, workspace: str, person: str) -> bool:
        return person in self.configured or person in await self.store.granted_admins(workspace=workspace)

    async def check(self, *, workspace: str, person: str) -> None:
        """Raise NotAdmin, before anything is done, when the person is not an admin."""
        if not await self.is_admin(workspace=workspace, person=person):
            raise NotAdmin("Only Amends admins can do that: the people in AMENDS_ADMINS and those an admin "
                           "granted it to. Ask one of them.")

    async def grant(self, *, workspace: str, by: str, person: str) -> None:
        """An admin makes someone else an admin of this workspace."""
        await self.check(workspace=workspace, person=by)
        await self.store.grant_admin(workspace=workspace, person=person)

    async def everyone(self, *, workspace: str) -> list[str]:
        """Every admin of the workspace, for telling them something."""
        return sorted(self.configured | await self.store.granted_admins(workspace=workspace))
