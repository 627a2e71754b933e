"""The Teams app package: what an admin uploads to Teams (manifest.json, the two icons), built from settings."""
