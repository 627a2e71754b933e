"""Low survey scores open cases (issue 7, part 3): POST /api/csat, signed, through the real app."""

import json
import time

import pytest

from bot.checklist import Step
from bot.store import open_store
from handlers.csat import SIGNATURE, TIMESTAMP, signature
from tests.conftest import SIGNING_SECRET, RunningBot, bot_settings
from tests.doubles.slack_client import SlackDriver
from tests.flows import step_posts, wait_step

SECRET = "csat-test-secret"


@pytest.fixture
async def csat_bot(fake_slack, clock, tmp_path):
    running = await RunningBot.start(bot_settings(fake_slack, csat_secret=SECRET),
                                     store=open_store(str(tmp_path / "amends.json")), clock=clock)
    yield running
    await running.stop()


@pytest.fixture
def driver(csat_bot, fake_slack, http) -> SlackDriver:
    return SlackDriver(bot_url=csat_bot.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)


async def send(http, bot, result, *, secret=SECRET, stamp=None, headers=None):
    body = result if isinstance(result, bytes) else json.dumps(result).encode()
    stamp = str(int(time.time())) if stamp is None else stamp
    sent = {"Content-Type": "application/json", TIMESTAMP: stamp, SIGNATURE: signature(secret, stamp, body)}
    sent.update(headers or {})
    async with http.post(bot.url + "/api/csat", data=body, headers=sent) as resp:
        return resp.status, await resp.json()


async def map_soho(driver, fake_slack):
    await driver.command("admin location soho <#CSOHO|soho-floor>", user="UADMIN", user_name="ada")
    told = await fake_slack.wait_for("response_url", where=lambda c: "soho" in c.args["text"])
    assert "Saved" in told[0].args["text"]


async def everything(bot):
    return [c.id for owner in ("", "U1", "U2") for c in await bot.recovery.open_cases(workspace="T1", owner=owner)]


async def test_a_low_score_opens_a_case_the_first_to_tap_owns(csat_bot, driver, fake_slack, http):
    await map_soho(driver, fake_slack)
    result = {"response_id": "resp-77", "score": 2, "comment": "Cold food & slow <!channel>", "customer": "table 9",
              "location": "Soho", "employee": "Ben"}
    assert await send(http, csat_bot, result) == (201, {"case": "R-1001", "posted": True})
    card = (await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CSOHO"
                                      and "R-1001" in c.args["text"]))[0]
    shown = json.dumps(card.args["blocks"], ensure_ascii=False)
    assert "Take it" in shown and "waiting for someone" in shown and "<!channel>" not in shown
    assert step_posts(fake_slack, card, Step.APOLOGISE) == []  # nobody's yet: no checklist

    # The same response again (a survey tool retrying): one case.
    assert await send(http, csat_bot, result) == (200, {"case": "R-1001", "duplicate": True})

    await driver.click(card, "take", user="U2", user_name="ben")  # Ben is first
    await wait_step(fake_slack, card, Step.APOLOGISE)
    await fake_slack.wait_for("chat.update", where=lambda c: c.args["ts"] == card.answer["ts"]
                              and "Ben" in c.args["text"])
    await driver.click(card, "take", user="U1", user_name="amy")  # Amy, a moment later
    told = await fake_slack.wait_for("response_url", where=lambda c: "already took" in c.args["text"])
    assert "Ben already took R-1001" in told[0].args["text"]
    case = await csat_bot.recovery.case(workspace="T1", case_id="R-1001")
    assert (case.owner, case.customer) == ("U2", "table 9") and "served by Ben" in case.what_happened
    assert await everything(csat_bot) == ["R-1001"]


async def test_a_score_above_the_threshold_opens_nothing(csat_bot, driver, fake_slack, http):
    await map_soho(driver, fake_slack)
    assert await send(http, csat_bot, {"response_id": "r1", "score": 4, "location": "soho"}) == (
        200, {"opened": False, "reason": "a score above 3 opens no case"})
    assert await everything(csat_bot) == []


@pytest.mark.parametrize("name, how, status, words", [
    ("no signature", {"headers": {SIGNATURE: ""}}, 401, "sign the request"),
    ("forged signature", {"secret": "not-the-secret"}, 401, "bad signature"),
    ("stale timestamp", {"stamp": str(int(time.time()) - 301)}, 401, "within 5 minutes"),
    ("timestamp not a number", {"stamp": "yesterday"}, 401, "Unix time"),
    ("timestamp of digits that int() refuses", {"stamp": "\u00b2"}, 401, "Unix time"),
    ("malformed JSON", {"body": b"{not json"}, 400, "not JSON"),
    ("a JSON list", {"body": b"[1, 2]"}, 400, "JSON object"),
    ("score 0", {"result": {"score": 0}}, 422, "from 1 to 5"),
    ("score 6", {"result": {"score": 6}}, 422, "from 1 to 5"),
    ("score a word", {"result": {"score": "two"}}, 400, "whole number"),
    ("score true", {"result": {"score": True}}, 400, "whole number"),
    ("no response id", {"result": {"response_id": ""}}, 400, "response_id is missing"),
    ("unknown location", {"result": {"location": "atlantis"}}, 404, "unknown location 'atlantis'"),
])
async def test_every_bad_request_is_refused_with_a_reason_and_creates_nothing(
        csat_bot, driver, fake_slack, http, name, how, status, words):
    await map_soho(driver, fake_slack)
    posted_before = len(fake_slack.of("chat.postMessage"))
    result = {"response_id": "r1", "score": 1, "location": "soho", **how.get("result", {})}
    answer = await send(http, csat_bot, how.get("body", result), secret=how.get("secret", SECRET),
                        stamp=how.get("stamp"), headers=how.get("headers"))
    assert answer[0] == status and words in answer[1]["error"], answer
    assert await everything(csat_bot) == []
    assert len(fake_slack.of("chat.postMessage")) == posted_before


async def test_without_a_secret_the_endpoint_is_off(bot, http):
    assert await send(http, bot, {"response_id": "r1", "score": 1, "location": "soho"}) == (
        503, {"error": "CSAT is off: set AMENDS_CSAT_SECRET (see README)"})


@pytest.mark.parametrize("text, words", [
    ("admin location Soho!! <#CSOHO|x>", "can't be a location name"),
    ("admin location soho", "Usage"),
    ("admin location soho #soho", "isn't a channel"),
])
async def test_bad_location_commands_change_nothing(csat_bot, driver, fake_slack, http, text, words):
    await driver.command(text, user="UADMIN", user_name="ada")
    told = await fake_slack.wait_for("response_url")
    assert words in told[0].args["text"]
    assert (await send(http, csat_bot, {"response_id": "r1", "score": 1, "location": "soho"}))[0] == 404


async def test_a_location_the_bot_cannot_post_in_is_refused(csat_bot, driver, fake_slack, http):
    fake_slack.cannot_post.add("CSECRET")
    await driver.command("admin location soho <#CSECRET|secret>", user="UADMIN", user_name="ada")
    told = await fake_slack.wait_for("response_url")
    assert "Invite me there first" in told[0].args["text"]
    assert (await send(http, csat_bot, {"response_id": "r1", "score": 1, "location": "soho"}))[0] == 404


async def test_fuzzing_api_csat_never_gets_a_500_and_only_a_201_opens_a_case(csat_bot, driver, fake_slack, http):
    """Issue 8's fuzz pass, on this route too: signed, mutated results (some stay valid: those, and only
    those, answer 201 and open their case) and unsigned garbage."""
    import random

    from tests.test_fuzz_routes import ROUNDS, SEED, mutate
    await map_soho(driver, fake_slack)
    rng = random.Random(SEED)
    good = {"response_id": "r", "score": 2, "comment": "slow", "customer": "table 9", "location": "soho",
            "employee": "Ben"}
    statuses, opened = {}, set()
    for n in range(ROUNDS):
        result = mutate({**good, "response_id": f"r{n}"}, rng)
        signed = n % 5 != 0  # every fifth goes unsigned
        body = json.dumps(result).encode() if rng.random() < 0.9 else bytes(rng.randrange(256) for _ in range(40))
        status, answer = await send(http, csat_bot, body, headers=None if signed else {SIGNATURE: "v0=00"})
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (result, answer)
        if status == 201:
            opened.add(answer["case"])
    assert sorted(await everything(csat_bot)) == sorted(opened)  # the store changed exactly as answered
    assert statuses.get(401, 0) >= ROUNDS // 5 and any(s in statuses for s in (400, 404, 422)), statuses
    print(f"\n/api/csat fuzz, seed {SEED}: {ROUNDS} requests, answers {dict(sorted(statuses.items()))}, "
          f"{len(opened)} cases opened")
