"""Don't wait for anger: a low satisfaction score opens a case, unowned, where that location's people see it.

A survey tool (or a small relay in front of it) sends one result as JSON to POST /api/csat (signed;
handlers/csat.py checks that). Here: what a result must hold, where each location's cases go, and
opening the case once per survey response.
"""

import json
import re
from dataclasses import dataclass

from bot.cases import Case
from bot.errors import BadCommand, Refusal
from bot.recovery import Recovery

# Location names are kept under this pseudo-workspace, so a survey result needs to name only its location.
DIRECTORY = "_csat_locations"
LOCATION = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TEXT_MAX = 1000


class SurveyRefused(Exception):
    """A result we can't take: the HTTP status and the reason the sender reads."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class SurveyResult:
    response_id: str
    score: int
    location: str
    comment: str = ""
    customer: str = ""
    employee: str = ""


@dataclass(frozen=True)
class Place:
    workspace: str
    channel: str


def read_result(raw: bytes) -> SurveyResult:
    """The result in a request body, or SurveyRefused saying what is wrong with it."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SurveyRefused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise SurveyRefused(400, "the body must be a JSON object")

    def text(name: str, *, required: bool = False, limit: int = TEXT_MAX) -> str:
        value = data.get(name, "")
        if value is None:
            value = ""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "response_id":
            value = str(value)  # survey tools often number their responses
        if not isinstance(value, str):
            raise SurveyRefused(400, f"{name} must be a string")
        if required and not value.strip():
            raise SurveyRefused(400, f"{name} is missing")
        return value.strip()[:limit]

    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int):
        raise SurveyRefused(400, "score must be a whole number from 1 to 5")
    if not 1 <= score <= 5:
        raise SurveyRefused(422, f"score must be from 1 to 5, not {score}")
    return SurveyResult(response_id=text("response_id", required=True, limit=200), score=score,
                        location=text("location", required=True, limit=64).lower(), comment=text("comment"),
                        customer=text("customer"), employee=text("employee", limit=200))


async def set_location(recovery: Recovery, *, workspace: str, name: str, channel: str, check=None) -> str:
    """Map a location name to the channel where its low scores open cases; the name as kept. `check`
    (the platform proving it can post there) runs after the name is found valid, before anything is saved."""
    name = name.strip().lower()
    if not LOCATION.match(name):
        raise BadCommand(f"{name!r} can't be a location name: use lower-case letters, digits, . - or _ "
                         "(e.g. soho, hotel-lisbon), as your survey tool sends it.")
    kept = await recovery.store.reference(workspace=DIRECTORY, key=name)
    if kept is not None and kept["workspace"] != workspace:
        raise Refusal(f"The location name {name!r} is already used by another workspace; pick another.")
    if check is not None:
        await check()
    await recovery.store.put_reference(workspace=DIRECTORY, key=name, value={"workspace": workspace,
                                                                            "channel": channel})
    return name


async def place_of(recovery: Recovery, location: str) -> Place | None:
    kept = await recovery.store.reference(workspace=DIRECTORY, key=location)
    return None if kept is None else Place(workspace=kept["workspace"], channel=kept["channel"])


async def open_for(recovery: Recovery, result: SurveyResult, *, threshold: int) -> tuple[Case | None, bool, Place]:
    """(case, new, place): the case a low score opened, or None for a score above the threshold; `new`
    is False for a response seen before, which opens nothing more.

    Once per response: the response id is looked up, the case opened, then the id recorded. A crash
    between the last two leaves one extra case for a retried delivery, never a lost one: a duplicate
    case is closed in a tap, a guest nobody calls back is not."""
    place = await place_of(recovery, result.location)
    if place is None:
        raise SurveyRefused(404, f"unknown location {result.location!r}: an admin maps it with "
                                 f"/recover admin location {result.location} #channel (Slack), or "
                                 f"@Amends recover admin location {result.location} here in the channel (Teams)")
    if result.score > threshold:
        return None, False, place
    key = f"csat:{result.response_id}"
    seen = await recovery.store.reference(workspace=place.workspace, key=key)
    if seen is not None:
        return await recovery.case(workspace=place.workspace, case_id=seen["case"]), False, place
    what = f"Survey score {result.score}/5" + (f": “{result.comment}”" if result.comment else "")
    if result.employee:
        what += f" (served by {result.employee})"
    case = await recovery.open_case(workspace=place.workspace, owner="", owner_name="", what_happened=what,
                                    customer=result.customer)
    await recovery.store.put_reference(workspace=place.workspace, key=key, value={"case": case.id})
    return case, True, place
