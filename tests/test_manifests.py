"""The app manifests are valid against the platforms' schemas and match what the code uses."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# Web API method → the bot scopes Slack requires for it (empty: none, or not a bot token's).
SCOPES = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_getPermalink": set(),
    "conversations_open": {"im:write"},
    "users_info": {"users:read"},
    "views_open": set(),
    "views_publish": set(),  # the App Home tab
    "views_update": set(),  # the give form, redrawn with the catalogue item picked
    "auth_test": set(),
    # doctor: is the bot in the recovery channel (public or private)?
    "conversations_info": {"channels:read", "groups:read"},
    "conversations_members": {"channels:read", "groups:read"},
    # outbox: did a send in doubt already post? (its recovery channel, public or private)
    "conversations_history": {"channels:history", "groups:history"},
    # the digest's chart (recovery channel) and exports (the admin's DM): files.uploadV2's three steps
    "files_upload_v2": {"files:write"},
    "oauth_v2_access": set(),  # the app's id and secret
    "apps_connections_open": set(),  # the app-level token's connections:write
}
SLACK_MANIFESTS = ("slack-manifest.json", "slack-manifest.oauth.json", "slack-manifest.socket.json")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def web_api_methods_used() -> set[str]:
    """Every AsyncWebClient method the code names: called on a client, or named in a string (doctor)."""
    import ast

    from slack_sdk.web.async_client import AsyncWebClient

    known = {name for name in dir(AsyncWebClient) if not name.startswith("_") and "_" in name}
    known -= {"api_call"}
    used = set()
    for source in [*ROOT.glob("handlers/**/*.py"), *ROOT.glob("bot/**/*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in known and isinstance(node.ctx, ast.Load):
                used.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
                used.add(node.value)
    return used


@pytest.mark.parametrize("name", SLACK_MANIFESTS)
def test_each_slack_manifest_is_valid_and_declares_recover(name):
    manifest = load(ROOT / name)
    schema = load(SCHEMAS / "slack-manifest.schema.1.0.0.json")
    errors = [e.message for e in Draft7Validator(schema).iter_errors(manifest)]
    assert errors == []
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/recover"
    assert command["should_escape"] is True  # mentions arrive as <@U…>, which the admin commands parse
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    if settings["socket_mode_enabled"]:
        urls = [command.get("url"), settings["interactivity"].get("request_url"),
                settings.get("event_subscriptions", {}).get("request_url")]
        assert urls == [None, None, None]  # Socket Mode: Slack needs no URL of ours
    else:
        assert command["url"] == "https://amends.example.com/slack/events"
        assert settings["interactivity"]["request_url"] == "https://amends.example.com/slack/events"


def test_the_slack_manifests_differ_only_in_how_slack_reaches_the_bot():
    http, oauth, socket = (load(ROOT / name) for name in SLACK_MANIFESTS)
    assert oauth["oauth_config"]["redirect_urls"] == ["https://amends.example.com/slack/oauth_redirect"]
    assert oauth["settings"]["event_subscriptions"] == {"request_url": "https://amends.example.com/slack/events",
                                                        "bot_events": ["app_home_opened", "app_uninstalled",
                                                                       "tokens_revoked"]}
    assert http["settings"]["event_subscriptions"] == {"request_url": "https://amends.example.com/slack/events",
                                                       "bot_events": ["app_home_opened"]}
    assert socket["settings"]["event_subscriptions"] == {"bot_events": ["app_home_opened"]}
    assert http["features"]["app_home"]["home_tab_enabled"] is True  # the Home tab (handlers/slack/home.py)
    for other in (oauth, socket):
        assert other["display_information"] == http["display_information"]
        assert other["oauth_config"]["scopes"] == http["oauth_config"]["scopes"]
        assert other["features"]["app_home"] == http["features"]["app_home"]
        assert [{k: v for k, v in c.items() if k != "url"} for c in other["features"]["slash_commands"]] == \
               [{k: v for k, v in c.items() if k != "url"} for c in http["features"]["slash_commands"]]


def test_every_slack_manifest_asks_for_exactly_the_scopes_the_code_uses():
    from handlers.slack.oauth import BOT_SCOPES

    used = web_api_methods_used()
    unknown = used - set(SCOPES)
    assert not unknown, f"add the scopes these Web API methods need to SCOPES and the manifests: {unknown}"
    needed = {"commands"} | {scope for method in used for scope in SCOPES[method]}
    assert set(BOT_SCOPES) == needed and len(BOT_SCOPES) == len(needed)  # what an OAuth install asks for
    for name in SLACK_MANIFESTS:
        assert set(load(ROOT / name)["oauth_config"]["scopes"]["bot"]) == needed, name


# --- the listeners the code registers against what the manifests declare ----------------------

def registered(bolt) -> set[tuple[str, object]]:
    """(kind, constraint) of every listener the Bolt app registered, read from Bolt's own matchers:
    ("command", "/recover"), ("event", "app_uninstalled"), ("action", "step_done"), ..."""
    import inspect

    found = set()
    for listener in bolt._async_listeners:
        for matcher in listener.matchers:
            inner = inspect.getclosurevars(matcher.func).nonlocals.get("func", matcher.func)
            kind = inner.__qualname__.split(".<locals>")[0]
            constraint = next(iter(inspect.getclosurevars(inner).nonlocals.values()), None)
            found.add((kind, constraint))
    return found


def undeclared(bolt, manifest: dict) -> list[str]:
    """The listeners Slack would never send anything to under this manifest, and declarations no listener serves."""
    features, settings = manifest.get("features", {}), manifest["settings"]
    commands = {c["command"] for c in features.get("slash_commands", [])}
    events = set(settings.get("event_subscriptions", {}).get("bot_events", []))
    shortcuts = {s["callback_id"] for s in features.get("shortcuts", [])}
    interactive = settings.get("interactivity", {}).get("is_enabled", False)
    problems, served = [], set()
    for kind, constraint in sorted(registered(bolt), key=str):
        if kind == "command" and constraint in commands:
            served.add(("command", constraint))
        elif kind == "event" and constraint in events:
            served.add(("event", constraint))
        elif kind in ("shortcut", "global_shortcut", "message_shortcut") and constraint in shortcuts:
            served.add(("shortcut", constraint))
        elif kind in ("action", "block_action", "view", "view_submission", "view_closed", "options",
                      "block_suggestion") and interactive:
            pass  # buttons and forms need interactivity on, and nothing declared per id
        else:
            problems.append(f"listener {kind} {constraint!r} is not declared in the manifest")
    declared = {("command", c) for c in commands} | {("event", e) for e in events} | {("shortcut", s) for s in shortcuts}
    problems += [f"the manifest declares {kind} {what!r} but no listener handles it"
                 for kind, what in sorted(declared - served)]
    return problems


def build(settings):
    from bot.clock import SystemClock
    from bot.recovery import Recovery
    from bot.store import open_store
    from handlers.slack import build_slack_app

    recovery = Recovery(store=open_store(":memory:"), clock=SystemClock(), currency="USD", tz=settings.zone)
    return build_slack_app(settings=settings, recovery=recovery).bolt


def mode_settings(name: str):
    from bot.settings import Settings
    from tests.doubles.slack_install import SECRET_KEY

    return {
        "slack-manifest.json": Settings(slack_bot_token="xoxb-1", slack_signing_secret="s"),
        "slack-manifest.oauth.json": Settings(slack_client_id="1.2", slack_client_secret="c", slack_signing_secret="s",
                                              secret_key=SECRET_KEY),
        "slack-manifest.socket.json": Settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1"),
    }[name]


@pytest.mark.parametrize("name", SLACK_MANIFESTS)
def test_every_listener_the_code_registers_is_declared_in_its_manifest(name):
    bolt = build(mode_settings(name))
    assert ("command", "/recover") in registered(bolt)
    assert undeclared(bolt, load(ROOT / name)) == []


def test_the_listener_check_catches_an_undeclared_listener_and_a_stale_declaration():
    async def listener(ack):
        await ack()

    bolt = build(mode_settings("slack-manifest.json"))
    bolt.command("/refund")(listener)
    bolt.event("app_mention")(listener)
    bolt.shortcut("quick_recover")(listener)
    manifest = load(ROOT / "slack-manifest.json")
    manifest["settings"]["event_subscriptions"] = {"bot_events": ["app_home_opened", "tokens_revoked"]}
    assert undeclared(bolt, manifest) == [
        "listener command '/refund' is not declared in the manifest",
        "listener event 'app_mention' is not declared in the manifest",
        "listener shortcut 'quick_recover' is not declared in the manifest",
        "the manifest declares event 'tokens_revoked' but no listener handles it",
    ]


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
    assert [extension["botId"] for extension in manifest["composeExtensions"]] == [BOT_APP_ID]
    blank = {"bots": [], "composeExtensions": []}
    assert {**manifest, **blank} == {**load(ROOT / "manifest.json"), **blank}  # only the bot id was filled in
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
