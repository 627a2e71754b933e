"""The app manifests are valid against the platforms' schemas and match what the code uses."""

import json
import re
from pathlib import Path

from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# Web API method → the bot scope Slack requires for it (None: no scope needed).
SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "conversations_open": "im:write",
    "users_info": "users:read",
    "views_open": None,
    "auth_test": None,
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_slack_manifest_is_valid_and_declares_recover():
    manifest = load(ROOT / "slack-manifest.json")
    schema = load(SCHEMAS / "slack-manifest.schema.1.0.0.json")
    errors = [e.message for e in Draft7Validator(schema).iter_errors(manifest)]
    assert errors == []
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/recover"
    assert command["should_escape"] is True  # mentions arrive as <@U…>, which the admin commands parse
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")


def test_the_slack_manifest_asks_for_exactly_the_scopes_the_code_uses():
    called = set()
    for source in [*ROOT.glob("handlers/**/*.py"), *ROOT.glob("bot/**/*.py"), ROOT / "app.py"]:
        called |= set(re.findall(r"client\.(\w+)\(", source.read_text()))
    unknown = called - set(SCOPES)
    assert not unknown, f"add the scope these Web API methods need to SCOPES and the manifest: {unknown}"
    needed = {"commands"} | {SCOPES[m] for m in called if SCOPES[m]}
    assert set(load(ROOT / "slack-manifest.json")["oauth_config"]["scopes"]["bot"]) == needed


def test_the_teams_manifest_is_valid_v1_19_with_the_recover_command():
    manifest = load(ROOT / "manifest.json")
    schema = load(SCHEMAS / "teams-manifest.schema.v1.19.json")
    # Draft 7 so that the schema's `const` on manifestVersion is enforced (draft-04 ignores it).
    errors = [e.message for e in Draft7Validator(schema).iter_errors(manifest)]
    assert errors == []
    assert manifest["manifestVersion"] == "1.19" and "v1.19" in manifest["$schema"]
    [bot] = manifest["bots"]
    titles = [c["title"] for lst in bot["commandLists"] for c in lst["commands"]]
    assert "recover" in titles
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}


def test_the_manifest_check_catches_a_bad_manifest():
    schema = load(SCHEMAS / "teams-manifest.schema.v1.19.json")
    manifest = load(ROOT / "manifest.json")
    manifest["manifestVersion"] = "1.16"
    del manifest["developer"]["privacyUrl"]
    assert len(list(Draft7Validator(schema).iter_errors(manifest))) >= 2
