"""Managers: the people who see every recovery, approve top-ups and recognise good ones.

A manager is an admin, or anyone in a role an admin marked as managing (e.g. "shift-lead").
Marking is per workspace and kept in the store, so it holds across restarts and processes.
Platform-neutral: whether someone is a platform admin is the glue's to say (Slack: workspace
admins and owners; both platforms: AMENDS_ADMINS and granted admins).
"""

from bot.errors import UnknownRole
from bot.recovery import Recovery
from bot.roles import Role

MANAGING_ROLES = "config:managing_roles"


class Managers:
    def __init__(self, *, recovery: Recovery):
        self.recovery = recovery

    async def managing_roles(self, *, workspace: str) -> set[str]:
        stored = await self.recovery.store.reference(workspace=workspace, key=MANAGING_ROLES)
        return set((stored or {}).get("roles", ()))

    async def set_managing(self, *, workspace: str, role: str, managing: bool) -> set[str]:
        """Mark a role as managing (or not); the role must exist. Returns the managing roles now."""
        name = role.strip().lower()
        known = [r.name for r in await self.recovery.roles(workspace=workspace)]
        if name not in known:
            raise UnknownRole(f"There is no role {role!r}. Roles: {', '.join(known)}.")
        roles = await self.managing_roles(workspace=workspace)
        roles = roles | {name} if managing else roles - {name}
        await self.recovery.store.put_reference(workspace=workspace, key=MANAGING_ROLES,
                                                value={"roles": sorted(roles)})
        return roles

    async def is_manager(self, *, workspace: str, person: str, is_admin: bool, role: Role | None = None) -> bool:
        """`role`: the person's, when the caller has read it already (one store read less)."""
        if is_admin:
            return True
        role = role or await self.recovery.role_for(workspace=workspace, person=person)
        return role.name in await self.managing_roles(workspace=workspace)
