"""Settings come from the environment and .env once, and never print a secret."""

import pytest

from bot.settings import Settings


def test_defaults_are_documented_values():
    settings = Settings.from_env({}, dotenv_path=None)
    assert (settings.port, settings.db, settings.currency, settings.tz) == (3978, "data/amends.json", "USD", "UTC")
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.missing_for_slack() == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SLACK_BOT_TOKEN=xoxb-from-file\nAMENDS_CURRENCY=eur\nPORT=4000\n")
    settings = Settings.from_env({"PORT": "5000", "AMENDS_ADMINS": "U1, U2,,"}, dotenv_path=str(env_file))
    assert settings.slack_bot_token == "xoxb-from-file"
    assert settings.currency == "EUR" and settings.port == 5000
    assert settings.admins == frozenset({"U1", "U2"})


def test_secrets_never_print():
    settings = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "shh",
                                  "MicrosoftAppPassword": "pw-secret", "SLACK_APP_TOKEN": "xapp-secret"},
                                 dotenv_path=None)
    shown = repr(settings) + str(settings)
    for secret in ("xoxb-very-secret", "shh", "pw-secret", "xapp-secret"):
        assert secret not in shown


def test_the_api_url_gets_its_trailing_slash():
    settings = Settings.from_env({"SLACK_API_URL": "http://127.0.0.1:9999/api"}, dotenv_path=None)
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"


@pytest.mark.parametrize("name, value, words", [
    ("AMENDS_TZ", "Mars/Olympus", "time zone"),
    ("AMENDS_CURRENCY", "XYZ", "ISO 4217"),
    ("PORT", "eighty", "PORT must be a number"),
])
def test_a_bad_value_stops_start_up_with_a_sentence(name, value, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_env({name: value}, dotenv_path=None)


def test_settings_are_frozen():
    settings = Settings.from_env({}, dotenv_path=None)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_a_database_password_never_prints():
    settings = Settings.from_env({"AMENDS_DB": "postgresql://amends:s3cr%40t@db.internal:5432/amends"},
                                 dotenv_path=None)
    assert "s3cr" not in repr(settings) and "s3cr" not in settings.db_shown
    assert settings.db_shown == "postgresql://amends:***@db.internal:5432/amends"
    assert Settings.from_env({"AMENDS_DB": "data/x.json"}, dotenv_path=None).db_shown == "data/x.json"
