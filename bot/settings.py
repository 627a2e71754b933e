"""Settings, read once from the environment (and a .env file if present) into a frozen object.

Secrets are fields with repr=False, so logging the settings never prints them.
"""

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
    microsoft_app_id: str = ""
    microsoft_app_password: str = field(default="", repr=False)
    microsoft_app_type: str = "MultiTenant"
    microsoft_app_tenant_id: str = ""
    db: str = field(default="data/amends.json", repr=False)  # a PostgreSQL URL may hold a password
    db_pool_size: int = DEFAULT_POOL_SIZE
    admins: frozenset[str] = frozenset()
    currency: str = "USD"
    tz: str = "UTC"

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
        return cls(
            port=port,
            host=values.get("HOST") or "0.0.0.0",
            slack_bot_token=values.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=values.get("SLACK_SIGNING_SECRET", ""),
            slack_app_token=values.get("SLACK_APP_TOKEN", ""),
            slack_api_url=api_url,
            microsoft_app_id=values.get("MicrosoftAppId", ""),
            microsoft_app_password=values.get("MicrosoftAppPassword", ""),
            microsoft_app_type=values.get("MicrosoftAppType") or "MultiTenant",
            microsoft_app_tenant_id=values.get("MicrosoftAppTenantId", ""),
            db=values.get("AMENDS_DB") or "data/amends.json",
            db_pool_size=int(pool_size),
            admins=frozenset(a.strip() for a in values.get("AMENDS_ADMINS", "").split(",") if a.strip()),
            currency=check_currency(values.get("AMENDS_CURRENCY") or "USD"),
            tz=tz,
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

    def missing_for_slack(self) -> list[str]:
        """The variables Slack needs that are not set."""
        return [name for name, value in (("SLACK_BOT_TOKEN", self.slack_bot_token),
                                         ("SLACK_SIGNING_SECRET", self.slack_signing_secret)) if not value]
