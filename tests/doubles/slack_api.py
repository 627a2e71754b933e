"""A fake Slack Web API that speaks the real protocol, for tests and local runs.

It listens on 127.0.0.1 (port 0), answers the methods Amends calls the way Slack does,
records every call (method, arguments, headers), and checks every Block Kit payload with
slack_sdk's models plus the limits slack_sdk does not check (50 blocks per message). A
payload Slack would reject is answered with Slack's error and listed in `problems`, which
the test fixtures assert is empty. Tests `await wait_for(...)` with a deadline, never sleep.
"""

import asyncio
import itertools
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from aiohttp import BasicAuth, web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.doubles import serve_on_loopback

BOT_TOKEN = "xoxb-test-token"
BOT_USER = "UBOT"
APP_TOKEN = "xapp-test-token"  # an app-level token, for Socket Mode's apps.connections.open
CLIENT_ID, CLIENT_SECRET = "1111.2222", "test-client-secret"  # the app's OAuth credentials
# Every scope a bot token of the fake has unless a test says otherwise (sent back in X-OAuth-Scopes).
BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read", "channels:read", "groups:read",
              "channels:history", "groups:history", "files:write")
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
TEXT_MAX = 40000


@dataclass
class Call:
    method: str
    args: dict
    headers: dict = field(default_factory=dict)
    answer: dict = field(default_factory=dict)


class FakeSlack:
    def __init__(self, *, team: str = "T1", lean: bool = False):
        """`lean` (for load tests) keeps only per-method counts (GET /stats) and skips the Block Kit checks."""
        self.team = team
        self.lean = lean
        self.counts: Counter[str] = Counter()
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.users: dict[str, dict] = {}
        self.cannot_post: set[str] = set()
        self._failures: dict[str, list[dict]] = {}
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Which bot tokens are valid, and for which workspace, bot user and scopes (multi-workspace tests).
        self.tokens: dict[str, dict] = {}
        self.add_token(BOT_TOKEN, team=team)
        self.install_codes: dict[str, dict] = {}  # OAuth code → oauth.v2.access answer (used once)
        self.socket_url: str | None = None  # where apps.connections.open sends Socket Mode clients
        self.channels: dict[str, dict] = {}  # conversations.info / .members: id → {"name", "members"}
        # files.uploadV2's three steps: file id → {"filename", "length", "data" (bytes once uploaded), and once
        # completed "channel", "thread_ts", "title", "initial_comment"}; `shared` lists the completed ones in order.
        self.uploads: dict[str, dict] = {}
        self.shared: list[dict] = []
        self._files = itertools.count(1)

    # --- running -----------------------------------------------------------------------------
    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._response_url)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # --- test controls -----------------------------------------------------------------------
    def add_user(self, user_id: str, name: str, *, admin: bool = False, owner: bool = False, **extra) -> None:
        self.users[user_id] = {"id": user_id, "team_id": self.team, "name": name, "real_name": name.title(),
                               "is_admin": admin, "is_owner": owner, "is_primary_owner": False,
                               "is_bot": False, "deleted": False, **extra}

    def add_token(self, token: str, *, team: str, scopes=BOT_SCOPES, bot_user: str = BOT_USER,
                  bot_id: str = "BBOT") -> None:
        """A bot token Slack accepts, for `team`, with these scopes."""
        self.tokens[token] = {"team": team, "scopes": tuple(scopes), "bot_user": bot_user, "bot_id": bot_id}

    def add_install(self, code: str, *, team: str, token: str, team_name: str = "", scopes=BOT_SCOPES,
                    installer: str = "U1", bot_user: str = BOT_USER) -> None:
        """Someone approved the app in `team`: oauth.v2.access exchanges `code` (once) for `token`,
        answering in the shape Slack records (tests/fixtures/oauth_v2_access.json)."""
        answer = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "oauth_v2_access.json").read_text())
        answer.update(access_token=token, scope=",".join(scopes), bot_user_id=bot_user,
                      team={"id": team, "name": team_name or f"Workspace {team}"}, authed_user={"id": installer})
        self.install_codes[code] = answer
        self.add_token(token, team=team, scopes=scopes, bot_user=bot_user)

    def add_channel(self, channel: str, *, name: str = "recoveries", members=()) -> None:
        self.channels[channel] = {"name": name, "members": list(members)}

    def fail_next(self, method: str, *, error: str = "internal_error", status: int = 200,
                  retry_after: int | None = None) -> None:
        """Make the next call of `method` fail the way Slack fails (an error, or a 429 with Retry-After)."""
        self._failures.setdefault(method, []).append({"error": error, "status": status, "retry_after": retry_after})

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, *, count: int = 1, where=None, timeout: float = 5.0) -> list[Call]:
        """Wait until at least `count` calls of `method` (matching `where`) were received."""
        def matching():
            return [c for c in self.of(method) if where is None or where(c)]
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
            except TimeoutError:
                raise AssertionError(f"expected {count} {method} call(s) within {timeout}s, got "
                                     f"{len(matching())}: {[c.method for c in self.calls]}") from None
        return matching()

    # --- the protocol ------------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.Response:
        """Step 2 of files.uploadV2: the bytes, POSTed to the URL files.getUploadURLExternal gave."""
        file_id = request.match_info["file_id"]
        data = await request.read()
        pending = self.uploads.get(file_id)
        await self._record(Call(method="upload", args={"file_id": file_id, "size": len(data)},
                                headers=dict(request.headers)))
        if pending is None or "data" in pending:
            self.problems.append(f"upload to an unknown or used upload URL ({file_id})")
            return web.Response(status=404, text="not found")
        if len(data) != pending["length"]:
            self.problems.append(f"upload of {len(data)} bytes for {file_id}, announced as {pending['length']}")
            return web.Response(status=400, text="length mismatch")
        pending["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    def _files_step(self, method: str, args: dict) -> dict:
        """Steps 1 and 3 of files.uploadV2: files.getUploadURLExternal, files.completeUploadExternal."""
        if method == "files.getUploadURLExternal":
            length = str(args.get("length", ""))
            if not args.get("filename") or not length.isdigit() or int(length) == 0:
                self.problems.append(f"files.getUploadURLExternal without a filename and a length: {args}")
                return {"ok": False, "error": "invalid_arguments"}
            file_id = f"F{next(self._files):06d}"
            self.uploads[file_id] = {"filename": args["filename"], "length": int(length)}
            return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}
        files = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files") or []
        if args.get("thread_ts") and not args.get("channel_id"):  # Slack: a reply needs its one channel
            self.problems.append(f"files.completeUploadExternal with a thread_ts but no channel_id: {args}")
            return {"ok": False, "error": "invalid_arguments"}
        done = []
        for f in files:
            upload = self.uploads.get(f.get("id", ""))
            if upload is None or "data" not in upload or "channel" in upload:
                self.problems.append(f"files.completeUploadExternal for a file not uploaded (or done): {f}")
                return {"ok": False, "error": "file_not_found"}
            upload.update(channel=args.get("channel_id") or args.get("channels"), thread_ts=args.get("thread_ts"),
                          title=f.get("title"), initial_comment=args.get("initial_comment"))
            done.append({"id": f["id"], "name": upload["filename"], "title": f.get("title") or upload["filename"]})
        for f in done:
            self.shared.append({"id": f["id"], **self.uploads[f["id"]]})
        return {"ok": True, "files": done}

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.counts))

    async def _record(self, call: Call) -> None:
        self.counts[call.method] += 1
        if self.lean:
            return
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _args(self, request: web.Request) -> dict:
        args = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                args.update(json.loads(raw))
            else:
                args.update(dict(parse_qsl(raw.decode())))
        for key in ("blocks", "view", "attachments"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        call = Call(method=method, args=args, headers=dict(request.headers))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        scopes = {}
        if method in ("oauth.v2.access", "apps.connections.open"):
            call.answer = self._grant(method, args, request, token)
        elif token not in self.tokens:
            call.answer = {"ok": False, "error": "invalid_auth"}
        elif self._failures.get(method):
            failure = self._failures[method].pop(0)
            call.answer = {"ok": False, "error": failure["error"]}
            await self._record(call)
            headers = {"Retry-After": str(failure["retry_after"])} if failure["retry_after"] is not None else {}
            return web.json_response(call.answer, status=failure["status"], headers=headers)
        else:
            # Like Slack, every answer to a bot token says which scopes it has.
            scopes = {"X-OAuth-Scopes": ",".join(self.tokens[token]["scopes"])}
            call.answer = self._answer(method, args, token=token)
        await self._record(call)
        return web.json_response(call.answer, headers=scopes)

    def _grant(self, method: str, args: dict, request: web.Request, token: str) -> dict:
        """oauth.v2.access (the app's id and secret, HTTP Basic) and apps.connections.open (an xapp- token)."""
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return {"ok": False, "error": "invalid_auth" if not token.startswith("xox") else "not_allowed_token_type"}
            if self.socket_url is None:
                self.problems.append("apps.connections.open called but the test set no socket_url")
                return {"ok": False, "error": "internal_error"}
            return {"ok": True, "url": self.socket_url}
        try:
            basic = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            basic = None
        if basic is None or (basic.login, basic.password) != (CLIENT_ID, CLIENT_SECRET):
            return {"ok": False, "error": "invalid_client_id"}
        answer = self.install_codes.pop(args.get("code", ""), None)
        return answer if answer is not None else {"ok": False, "error": "invalid_code"}

    async def _response_url(self, request: web.Request) -> web.Response:
        args = json.loads(await request.read())
        problem = self._check_message(args, "response_url")
        await self._record(Call(method="response_url", args={**args, "name": request.match_info["name"]},
                                headers=dict(request.headers)))
        if problem:
            return web.Response(status=400, text=problem)
        return web.Response(text="ok")

    def _answer(self, method: str, args: dict, *, token: str = BOT_TOKEN) -> dict:
        ts = lambda: f"1700000000.{next(self._ts):06d}"  # noqa: E731
        bot = self.tokens[token]
        if method == "auth.test":
            return {"ok": True, "url": f"https://{bot['team'].lower()}.slack.com/", "team": f"Workspace {bot['team']}",
                    "user": "amends", "team_id": bot["team"], "user_id": bot["bot_user"], "bot_id": bot["bot_id"]}
        if method in ("conversations.info", "conversations.members"):
            channel = self.channels.get(args.get("channel", ""))
            if channel is None:
                return {"ok": False, "error": "channel_not_found"}
            if method == "conversations.members":
                return {"ok": True, "members": channel["members"], "response_metadata": {"next_cursor": ""}}
            return {"ok": True, "channel": {"id": args["channel"], "name": channel["name"], "is_channel": True,
                                            "is_member": bot["bot_user"] in channel["members"]}}
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            problem = self._check_message(args, method)
            if problem:
                return {"ok": False, "error": "invalid_blocks", "detail": problem}
            channel = args.get("channel", "")
            if channel in self.cannot_post or (channel.startswith("D") and not channel.startswith("DBOT")):
                return {"ok": False, "error": "not_in_channel" if channel.startswith(("C", "G")) else "channel_not_found"}
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": ts()}
            stamp = args.get("ts") if method == "chat.update" else ts()
            return {"ok": True, "channel": channel, "ts": stamp,
                    "message": {"text": args.get("text"), "blocks": args.get("blocks"), "ts": stamp}}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "DBOT" + args.get("users", "")}}
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            if user is not None and bot["team"] not in user.get("teams", [user["team_id"]]):
                user = None  # a workspace's token sees only its own people (`teams`: one person in several)
            if user is None and self.lean:
                self.add_user(args.get("user", ""), "bench")
                user = self.users[args.get("user", "")]
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "views.open":
            problem = self._check_view(args.get("view") or {})
            if problem:
                return {"ok": False, "error": "invalid_arguments", "detail": problem}
            if not args.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            return {"ok": True, "view": {**args["view"], "id": f"V{next(self._views):04d}", "team_id": bot["team"],
                                         "app_installed_team_id": bot["team"]}}
        if method == "views.update":  # a modal changed in place (the give form prefilling the item picked)
            problem = self._check_view(args.get("view") or {})
            if problem or not args.get("view_id"):
                return {"ok": False, "error": "invalid_arguments" if problem else "not_found", "detail": problem}
            return {"ok": True, "view": {**args["view"], "id": args["view_id"], "team_id": bot["team"],
                                         "app_installed_team_id": bot["team"]}}
        if method == "views.publish":  # the App Home tab of one person
            view = args.get("view") or {}
            problem = self._check_view(view) or (None if view.get("type") == "home" else "views.publish: not a home view")
            if not problem and not args.get("user_id"):
                problem = "views.publish: no user_id"
            if problem:
                if problem not in self.problems:
                    self.problems.append(problem)
                return {"ok": False, "error": "invalid_arguments", "detail": problem}
            return {"ok": True, "view": {**view, "id": f"V{next(self._views):04d}", "team_id": bot["team"],
                                         "app_installed_team_id": bot["team"]}}
        if method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
            if "files:write" not in bot["scopes"]:  # an install made before the scope was asked for
                return {"ok": False, "error": "missing_scope", "needed": "files:write",
                        "provided": ",".join(bot["scopes"])}
            return self._files_step(method, args)
        if method == "chat.getPermalink":
            return {"ok": True, "channel": args["channel"],
                    "permalink": f"https://amends-test.slack.com/archives/{args['channel']}/p{args['message_ts'].replace('.', '')}"}
        self.problems.append(f"unexpected Web API method {method}")
        return {"ok": False, "error": "unknown_method"}

    # --- Slack's checks ----------------------------------------------------------------------
    def _check_blocks(self, blocks: list, where: str, limit: int) -> str | None:
        if not isinstance(blocks, list):
            return f"{where}: blocks is not a list"
        if len(blocks) > limit:
            return f"{where}: {len(blocks)} blocks, over Slack's {limit}"
        for raw in blocks:
            parsed = Block.parse(raw)
            if parsed is None:
                return f"{where}: unknown block {raw!r}"
            try:
                parsed.validate_json()
            except SlackObjectFormationError as error:
                return f"{where}: {error} in {raw!r}"
            action_ids = [e.get("action_id") for e in raw.get("elements", []) if isinstance(e, dict) and e.get("action_id")]
            if len(action_ids) != len(set(action_ids)):
                return f"{where}: duplicate action_id in {raw!r}"
        return None

    def _check_message(self, args: dict, where: str) -> str | None:
        if self.lean:
            return None
        problem = None
        text = args.get("text")
        if "blocks" in args:
            problem = self._check_blocks(args["blocks"], where, MESSAGE_BLOCKS_MAX)
            if not problem and not text:
                problem = f"{where}: blocks without a fallback text (notifications would be empty)"
        if not problem and text is not None and len(text) > TEXT_MAX:
            problem = f"{where}: text over {TEXT_MAX} characters"
        if not problem and where != "response_url" and not args.get("channel"):
            problem = f"{where}: no channel"
        if problem:
            self.problems.append(problem)
        return problem

    def _check_view(self, view: dict) -> str | None:
        if self.lean:
            return None
        problem = self._check_blocks(view.get("blocks", []), "view", VIEW_BLOCKS_MAX)
        if not problem:
            try:
                View(**view).validate_json()
            except (SlackObjectFormationError, TypeError) as error:
                problem = f"view: {error}"
        if not problem and any(b.get("type") == "input" for b in view.get("blocks", [])) and not view.get("submit"):
            problem = "view: must define submit to use input block"
        if problem:
            self.problems.append(problem)
        return problem


async def _serve_until_stdin_closes() -> None:
    fake = await FakeSlack(lean=True).start()
    print(f"listening {fake.port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin (or exits) to stop us
    await fake.stop()


if __name__ == "__main__":
    # python -m tests.doubles.slack_api: a lean Slack Web API double on 127.0.0.1, for benchmarks.
    asyncio.run(_serve_until_stdin_closes())
