"""The HTTP edge of /slack/events: Bolt behind a 4xx for anything that is not a well-formed Slack request.

aiohttp refuses a body over the app's client_max_size with 413 before anything parses it. Bolt
itself answers a bad signature with 401, and a request no listener matches with 404; but a body
that is signed yet malformed (a `payload` that is not JSON, or JSON missing what Bolt reads before
any listener runs) raises inside Bolt, which aiohttp would answer with 500. Those are the sender's
fault, change nothing, and get 400 here, with a reference that is also in the log.
"""

import logging
import uuid

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)

# What Bolt raises reading a payload that lacks or mistypes what it expects (seen: KeyError 'type' in
# its workflow-step checks, TypeError on a JSON array, JSONDecodeError on a payload that is not JSON).
MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError)


def _refused(why: str) -> web.Response:
    reference = uuid.uuid4().hex[:8]
    log.warning("refused a malformed Slack request (%s) [ref %s]", why, reference)
    return web.json_response({"error": "malformed request", "reference": reference}, status=400)


async def dispatch(bolt: AsyncApp, request: web.Request) -> web.Response:
    """Hand the request to Bolt; a malformed one gets 400, never 500."""
    try:
        bolt_request = await to_bolt_request(request)  # reads the body: 413 over client_max_size
    except MALFORMED as error:
        return _refused(f"{type(error).__name__}: {error}")
    if not isinstance(bolt_request.body, dict):
        return _refused(f"a body of {type(bolt_request.body).__name__}")
    try:
        response = await bolt.async_dispatch(bolt_request)
    except MALFORMED as error:
        return _refused(f"{type(error).__name__}: {error}")
    return await to_aiohttp_response(response)
