"""POST /api/csat: a survey result, signed the way Slack signs its requests, opening an unowned case.

The scheme (README, "Low survey scores"): header X-Amends-Request-Timestamp is the current Unix time in
seconds; header X-Amends-Signature is "v0=" + the hex HMAC-SHA256, keyed with AMENDS_CSAT_SECRET, of
"v0:{timestamp}:{raw body}". A timestamp more than 5 minutes from now is refused, so a captured
request can't be replayed later. Every refusal is a 4xx with a reason, and creates nothing.
"""

import hashlib
import hmac
import logging
import time

from aiohttp import web

from bot import csat
from bot.cases import Case
from bot.errors import StoreUnavailable
from bot.recovery import Recovery
from handlers.slack.publish import SlackPublisher
from handlers.platforms import is_teams_conversation

log = logging.getLogger(__name__)

TIMESTAMP = "X-Amends-Request-Timestamp"
SIGNATURE = "X-Amends-Signature"
TOLERANCE = 300  # seconds, as Slack allows


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a sender puts in X-Amends-Signature (and what we compare against, in constant time)."""
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return "v0=" + digest


def _refused(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


async def receive(request: web.Request, *, secret: str, threshold: int, recovery: Recovery, slack,
                  admins: frozenset[str], now=time.time, teams=None) -> web.Response:
    """Check, read and act on one survey result; `slack` (or None) posts the case card in a Slack channel,
    `teams` (None, or a callable giving the Teams glue, loaded on first use) in a Teams one."""
    if not secret:
        return _refused(503, "CSAT is off: set AMENDS_CSAT_SECRET (see README)")
    body = await request.read()
    stamp, given = request.headers.get(TIMESTAMP, ""), request.headers.get(SIGNATURE, "")
    if not stamp or not given:
        return _refused(401, f"sign the request with {TIMESTAMP} and {SIGNATURE} (see README)")
    if not (stamp.isascii() and stamp.isdigit()) or abs(now() - int(stamp)) > TOLERANCE:
        return _refused(401, f"{TIMESTAMP} must be the current Unix time in seconds (within 5 minutes)")
    if not hmac.compare_digest(signature(secret, stamp, body), given):
        return _refused(401, "bad signature")
    try:
        result = csat.read_result(body)
        case, new, place = await csat.open_for(recovery, result, threshold=threshold)
    except csat.SurveyRefused as refusal:
        return _refused(refusal.status, refusal.reason)
    except StoreUnavailable as refusal:
        return _refused(503, refusal.sentence)
    if case is None:
        return web.json_response({"opened": False, "reason": f"a score above {threshold} opens no case"})
    if not new:
        return web.json_response({"case": case.id, "duplicate": True})
    if on_teams(place):
        posted = await _post_in_teams(case, place, teams=teams)
    else:
        posted = await _post(case, place, slack=slack, recovery=recovery, admins=admins)
    return web.json_response({"case": case.id, "posted": posted}, status=201)


def on_teams(place: csat.Place) -> bool:
    """A location mapped in a Teams channel."""
    return is_teams_conversation(place.channel)


async def _post_in_teams(case: Case, place: csat.Place, *, teams) -> bool:
    if teams is None:
        log.warning("CSAT case %s: %s is a Teams channel, but Teams is not set up here", case.id, place.channel)
        return False
    from handlers.teams.csat import post_case  # botbuilder is loaded only when a Teams location needs it
    try:
        return await post_case(teams().bot.publisher, case, place)
    except Exception:  # the case is recorded; say so in the log rather than failing the sender's request
        log.exception("CSAT case %s is recorded but its card was not posted in %s", case.id, place.channel)
        return False


async def _post(case: Case, place: csat.Place, *, slack, recovery: Recovery, admins: frozenset[str]) -> bool:
    """The case card, with "Take it", in the location's channel; False (and a log line) when it can't be."""
    if slack is None:
        return False
    client = await slack.client_for(case.workspace)
    if client is None:
        log.warning("CSAT case %s: no Slack installation for %s", case.id, case.workspace)
        return False
    try:
        await SlackPublisher(recovery=recovery, admins=admins).publish_case(client, case, channel=place.channel)
    except Exception:  # the case is recorded; say so in the log rather than failing the sender's request
        log.exception("CSAT case %s is recorded but its card was not posted in %s", case.id, place.channel)
        return False
    return True
