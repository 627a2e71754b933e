"""Platform glue: translate Slack and Teams payloads into domain calls and cards into messages."""
