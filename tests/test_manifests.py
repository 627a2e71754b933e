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


# --- the Teams app package (bin/teams-package) -----------------------------------------------

BOT_APP_ID = "9b0f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


def test_the_teams_package_holds_a_valid_manifest_naming_the_bot_and_both_icons(tmp_path):
    import io
    import zipfile

    from PIL import Image

    from teamsapp.package import build_package

    path = build_package(bot_id=BOT_APP_ID, out=tmp_path / "amends-teams.zip")
    with zipfile.ZipFile(path) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]  # top level, nothing else
        manifest = json.loads(package.read("manifest.json"))
        color = Image.open(io.BytesIO(package.read(manifest["icons"]["color"])))
        outline = Image.open(io.BytesIO(package.read(manifest["icons"]["outline"])))
    schema = load(SCHEMAS / "teams-manifest.schema.v1.19.json")
    assert [e.message for e in Draft7Validator(schema).iter_errors(manifest)] == []
    assert [bot["botId"] for bot in manifest["bots"]] == [BOT_APP_ID]
    assert {**manifest, "bots": []} == {**load(ROOT / "manifest.json"), "bots": []}  # only the bot id was filled in
    assert (color.format, color.size) == ("PNG", (192, 192))
    assert all(alpha == 255 for *_, alpha in color.convert("RGBA").get_flattened_data())  # full colour, no transparency
    assert (outline.format, outline.size, outline.mode) == ("PNG", (32, 32), "RGBA")
    pixels = list(outline.get_flattened_data())
    assert {pixel[:3] for pixel in pixels if pixel[3]} == {(255, 255, 255)}  # white wherever it shows
    assert any(p[3] == 0 for p in pixels) and any(p[3] == 255 for p in pixels)  # on transparent


def test_the_teams_package_is_reproducible_and_needs_a_real_bot_id(tmp_path):
    import pytest

    from teamsapp.package import build_package

    first = build_package(bot_id=BOT_APP_ID, out=tmp_path / "a.zip").read_bytes()
    assert build_package(bot_id=BOT_APP_ID, out=tmp_path / "b.zip").read_bytes() == first
    for bad in ("", "not-a-guid", "28:" + BOT_APP_ID):
        with pytest.raises(ValueError, match="MicrosoftAppId must be the bot's Microsoft App ID"):
            build_package(bot_id=bad, out=tmp_path / "c.zip")


def test_the_package_command_builds_from_microsoft_app_id_or_says_what_to_set(tmp_path):
    import os
    import subprocess
    import sys
    import zipfile

    base = {k: v for k, v in os.environ.items() if not k.startswith("Microsoft")}
    base["PYTHONPATH"] = str(ROOT)
    built = subprocess.run([sys.executable, "-m", "teamsapp.package", "--out", str(tmp_path / "out.zip")],
                           cwd=tmp_path, env={**base, "MicrosoftAppId": BOT_APP_ID}, capture_output=True, text=True)
    assert built.returncode == 0 and "Upload it in Teams" in built.stdout, built.stderr
    assert json.loads(zipfile.ZipFile(tmp_path / "out.zip").read("manifest.json"))["bots"][0]["botId"] == BOT_APP_ID
    refused = subprocess.run([sys.executable, "-m", "teamsapp.package", "--out", str(tmp_path / "no.zip")],
                             cwd=tmp_path, env=base, capture_output=True, text=True)
    assert refused.returncode == 2 and "set MicrosoftAppId" in refused.stderr
    assert not (tmp_path / "no.zip").exists()


def test_the_committed_icons_are_what_the_code_draws():
    from PIL import Image, ImageChops

    from teamsapp import icons

    for drawn, committed in ((icons.color_icon(), "color.png"), (icons.outline_icon(), "outline.png")):
        with Image.open(ROOT / "teamsapp" / committed) as saved:
            assert saved.mode == drawn.mode and ImageChops.difference(saved, drawn).getbbox() is None, committed
