"""Build the Teams app package to upload: manifest.json with the bot's Microsoft App ID, and its two icons.

    bin/teams-package [--out dist/amends-teams.zip]

The bot id comes from MicrosoftAppId (the environment, or .env), the same setting the bot
authenticates with, so the package and the running bot cannot name different bots. The zip is
reproducible: same inputs, same bytes. Needs only the standard library.
"""

import argparse
import copy
import json
import re
import sys
import zipfile
from pathlib import Path

from bot.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "dist" / "amends-teams.zip"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")  # the manifest schema's botId
FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # zip entry times: a rebuild from the same inputs gives the same bytes


def manifest_for(bot_id: str) -> dict:
    """The repository's manifest.json, naming the bot `bot_id`."""
    if not GUID.match(bot_id or ""):
        raise ValueError(f"MicrosoftAppId must be the bot's Microsoft App ID from Azure, a GUID like "
                         f"00000000-0000-0000-0000-000000000000, not {bot_id!r}")
    manifest = copy.deepcopy(json.loads((ROOT / "manifest.json").read_text()))
    for bot in manifest["bots"]:
        bot["botId"] = bot_id
    for extension in manifest.get("composeExtensions", []):  # "Recover from this" is the same bot
        extension["botId"] = bot_id
    return manifest


def build_package(*, bot_id: str, out: Path = DEFAULT_OUT) -> Path:
    """Write the zip Teams accepts: manifest.json and the icons it names, at the top level."""
    manifest = manifest_for(bot_id)
    files = {"manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()}
    for icon in manifest["icons"].values():
        files[icon] = (HERE / icon).read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as package:
        for name, data in files.items():
            package.writestr(zipfile.ZipInfo(name, date_time=FIXED_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bin/teams-package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write the zip (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if not settings.microsoft_app_id:
            raise ValueError("set MicrosoftAppId (the bot's Microsoft App ID from Azure; see README, Teams) first")
        path = build_package(bot_id=settings.microsoft_app_id, out=args.out)
    except ValueError as problem:
        print(f"No package built: {problem}", file=sys.stderr)
        return 2
    print(f"Built {path}. Upload it in Teams: Apps → Manage your apps → Upload an app.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
