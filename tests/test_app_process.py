"""The bot as a newcomer starts it: `python app.py` in its own process, configured only by environment."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from bot.checklist import Step
from tests.conftest import SIGNING_SECRET
from tests.doubles.slack_api import BOT_TOKEN
from tests.doubles.slack_client import SlackDriver
from tests.flows import give, open_case, wait_step, walk_to

APP = Path(__file__).resolve().parent.parent / "app.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BotProcess:
    def __init__(self, process: asyncio.subprocess.Process, port: int):
        self.process, self.port, self.log = process, port, []
        self._drain: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, env: dict, cwd: Path, *, deadline: float = 20) -> "BotProcess":
        port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AMENDS_", "Microsoft"))}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(APP), cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**base, "HOST": "127.0.0.1", "PORT": str(port), **env})
        running = cls(process, port)
        await asyncio.wait_for(running._until("Amends is listening on"), deadline)
        running._drain = asyncio.create_task(running._until("\0never\0"))
        return running

    async def _until(self, needle: str) -> None:
        while True:
            line = await self.process.stderr.readline()
            if not line:
                raise AssertionError("the bot exited:\n" + "".join(self.log))
            self.log.append(line.decode())
            if needle in self.log[-1]:
                return

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 10)
        if self._drain:
            self._drain.cancel()


async def test_without_slack_credentials_it_serves_healthz_and_says_what_to_set(tmp_path, http):
    bot = await BotProcess.start({"AMENDS_DB": str(tmp_path / "amends.json")}, tmp_path)
    try:
        assert any("SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET" in line for line in bot.log), bot.log
        async with http.get(bot.url + "/healthz") as resp:
            assert resp.status == 200 and await resp.json() == {"ok": True, "slack": False}
        async with http.post(bot.url + "/slack/events", data=b"x") as resp:
            assert resp.status == 503 and "SLACK_SIGNING_SECRET" in (await resp.json())["error"]
    finally:
        await bot.stop()


async def test_secrets_never_reach_the_log(tmp_path, fake_slack, http):
    bot = await BotProcess.start({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                                  "SLACK_API_URL": fake_slack.api_url, "AMENDS_DB": str(tmp_path / "a.json")}, tmp_path)
    await bot.stop()
    text = "".join(bot.log)
    assert "starting with Settings(" in text
    assert BOT_TOKEN not in text and SIGNING_SECRET not in text


async def test_a_newcomer_walks_a_case_to_its_summary_against_the_real_process(tmp_path, fake_slack, http):
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake_slack.api_url.rstrip("/"),  # a missing trailing slash is forgiven
           "AMENDS_DB": str(tmp_path / "data" / "amends.json"), "AMENDS_ADMINS": "UBOSS"}
    bot = await BotProcess.start(env, tmp_path)
    try:
        slack = SlackDriver(bot_url=bot.url, signing_secret=SIGNING_SECRET, fake=fake_slack, session=http)
        await slack.command("admin channel <#CREC|recoveries>", user="UBOSS")
        await fake_slack.wait_for("response_url", where=lambda c: "Saved" in c.args["text"])
        card = await open_case(slack, fake_slack, "cold soup, table 4, waited 40 min")
        compensate = await walk_to(slack, fake_slack, card, Step.COMPENSATE)
        assert (await give(slack, fake_slack, compensate, "12.50", kind="comp item")) == (200, "")
        follow_up = await wait_step(fake_slack, card, Step.FOLLOW_UP)
        await slack.click(follow_up, "follow_up_next_week")
        summary = await fake_slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "CREC"
                                            and "Recovered" in c.args["text"])
        assert "comp item · $12.50" in str(summary[0].args["blocks"])
    finally:
        await bot.stop()
    assert (tmp_path / "data" / "amends.json").exists()
    assert "Traceback" not in "".join(bot.log)


async def test_the_readme_start_command_starts_the_bot(tmp_path, http):
    """`./bin/start` itself (it installs into .venv only when the requirements changed)."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AMENDS_", "Microsoft"))}
    process = await asyncio.create_subprocess_exec(
        str(APP.parent / "bin" / "start"), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**base, "HOST": "127.0.0.1", "PORT": str(port), "AMENDS_DB": str(tmp_path / "amends.json")})
    bot = BotProcess(process, port)
    try:
        await asyncio.wait_for(bot._until("Amends is listening on"), 120)
        async with http.get(bot.url + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
    finally:
        await bot.stop()
