"""Settings, read once from the environment (and a .env file if present) into a frozen object.

Secrets are fields with repr=False, so logging the settings never prints them.
"""

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.money import check_currency
from bot.store.postgres import DEFAULT_POOL_SIZE

SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class Settings:
    port: int = 3978
    host: str = "0.0.0.0"
    slack_bot_token: str = field(default="", repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = SLACK_API_URL
    # Many workspaces (OAuth): set both, and AMENDS_SECRET_KEY to encrypt their bot tokens at rest.
    slack_client_id: str = ""
    slack_client_secret: str = field(default="", repr=False)
    slack_redirect_uri: str = ""
    secret_key: str = field(default="", repr=False)  # AMENDS_SECRET_KEY: Fernet key(s), newest first
    microsoft_app_id: str = ""
    microsoft_app_password: str = field(default="", repr=False)
    microsoft_app_type: str = "MultiTenant"
    microsoft_app_tenant_id: str = ""
    db: str = field(default="data/amends.json", repr=False)  # a PostgreSQL URL may hold a password
    db_pool_size: int = DEFAULT_POOL_SIZE
    admins: frozenset[str] = frozenset()
    currency: str = "USD"
    tz: str = "UTC"
    csat_secret: str = field(default="", repr=False)  # AMENDS_CSAT_SECRET: signs POST /api/csat
    csat_threshold: int = 3  # AMENDS_CSAT_THRESHOLD: a score at or under it opens a case

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, dotenv_path: str | None = ".env") -> "Settings":
        """Build settings from variables; a value in the environment wins over the same one in .env."""
        values = {k: v for k, v in (dotenv_values(dotenv_path) if dotenv_path else {}).items() if v is not None}
        values.update(os.environ if environ is None else environ)
        api_url = values.get("SLACK_API_URL") or SLACK_API_URL
        if not api_url.endswith("/"):
            api_url += "/"  # slack_sdk joins method names with urljoin: without the slash the last segment is lost
        try:
            port = int(values.get("PORT") or 3978)
        except ValueError:
            raise ValueError(f"PORT must be a number, not {values['PORT']!r}") from None
        pool_size = values.get("AMENDS_DB_POOL_SIZE") or str(DEFAULT_POOL_SIZE)
        if not pool_size.isdigit() or not 1 <= int(pool_size) <= 1000:
            raise ValueError(f"AMENDS_DB_POOL_SIZE must be a whole number of connections from 1 to 1000, "
                             f"not {pool_size!r}")
        tz = values.get("AMENDS_TZ") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"AMENDS_TZ {tz!r} is not a time zone name like Europe/London or America/New_York") from None
        threshold = (values.get("AMENDS_CSAT_THRESHOLD") or "3").strip()
        if threshold not in {"1", "2", "3", "4", "5"}:
            raise ValueError(f"AMENDS_CSAT_THRESHOLD must be a score from 1 to 5, not {threshold!r}")
        secret_key = values.get("AMENDS_SECRET_KEY", "").strip()
        if secret_key:
            check_secret_keys(secret_key)
        return cls(
            port=port,
            host=values.get("HOST") or "0.0.0.0",
            slack_bot_token=values.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=values.get("SLACK_SIGNING_SECRET", ""),
            slack_app_token=values.get("SLACK_APP_TOKEN", ""),
            slack_api_url=api_url,
            slack_client_id=values.get("SLACK_CLIENT_ID", ""),
            slack_client_secret=values.get("SLACK_CLIENT_SECRET", ""),
            slack_redirect_uri=values.get("SLACK_REDIRECT_URI", ""),
            secret_key=secret_key,
            microsoft_app_id=values.get("MicrosoftAppId", ""),
            microsoft_app_password=values.get("MicrosoftAppPassword", ""),
            microsoft_app_type=values.get("MicrosoftAppType") or "MultiTenant",
            microsoft_app_tenant_id=values.get("MicrosoftAppTenantId", ""),
            db=values.get("AMENDS_DB") or "data/amends.json",
            db_pool_size=int(pool_size),
            admins=frozenset(a.strip() for a in values.get("AMENDS_ADMINS", "").split(",") if a.strip()),
            currency=check_currency(values.get("AMENDS_CURRENCY") or "USD"),
            tz=tz,
            csat_secret=values.get("AMENDS_CSAT_SECRET", ""),
            csat_threshold=int(threshold),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def db_shown(self) -> str:
        """AMENDS_DB as it may be logged: a PostgreSQL URL's password replaced by ***."""
        parts = urlsplit(self.db)
        if not parts.password:
            return self.db
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def slack_oauth(self) -> bool:
        """Many workspaces, each installed through /slack/install (SLACK_CLIENT_ID and _SECRET set)."""
        return bool(self.slack_client_id or self.slack_client_secret)

    @property
    def slack_socket_mode(self) -> bool:
        """Slack reaches us over a websocket we open (SLACK_APP_TOKEN set): no public URL needed."""
        return bool(self.slack_app_token)

    def missing_for_slack(self) -> list[str]:
        """The variables Slack needs that are not set, for the mode the others choose: one workspace
        (SLACK_BOT_TOKEN) or many (OAuth); over HTTP (signed requests) or Socket Mode (SLACK_APP_TOKEN)."""
        if self.slack_oauth:
            needed = [("SLACK_CLIENT_ID", self.slack_client_id), ("SLACK_CLIENT_SECRET", self.slack_client_secret),
                      ("AMENDS_SECRET_KEY", self.secret_key)]
            if not self.slack_socket_mode:
                needed.append(("SLACK_SIGNING_SECRET", self.slack_signing_secret))
        elif self.slack_socket_mode:
            needed = [("SLACK_BOT_TOKEN", self.slack_bot_token)]
        else:
            needed = [("SLACK_BOT_TOKEN", self.slack_bot_token), ("SLACK_SIGNING_SECRET", self.slack_signing_secret)]
        return [name for name, value in needed if not value]


NEW_SECRET_KEY = ('.venv/bin/python -c "from cryptography.fernet import Fernet; '
                  'print(Fernet.generate_key().decode())"')


def check_secret_keys(text: str) -> list[str]:
    """AMENDS_SECRET_KEY: one Fernet key, or several comma-separated (the first encrypts, every one
    decrypts, so a key can be rotated). Checked here without loading cryptography at start-up."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    for key in keys:
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError("AMENDS_SECRET_KEY must be a Fernet key (32 bytes, url-safe base64); "
                             f"make one with: {NEW_SECRET_KEY}")
    return keys
