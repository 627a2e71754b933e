"""A local OpenID issuer for Bot Framework tokens, so authentication is tested switched on.

botbuilder fetches the OpenID metadata and the signing keys with blocking `requests.get`, from
inside the event loop that also runs the bot, so this issuer runs in its own thread (on the
test's loop it could never answer). botbuilder caches the keys per metadata URL for a day,
class-wide, so one issuer serves the whole test session.

Its key carries `"endorsements": ["msteams"]` as Bot Framework's keys do; its tokens carry what
Bot Framework's do: `iss`, `aud` (the bot's app id), `serviceurl` (which must equal the
activity's serviceUrl), `exp`, `nbf`, and the key id in the header.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.test"
KEY_ID = "amends-test-signing-key"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OpenIdIssuer:
    def __init__(self):
        self.key = new_key()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-issuer", daemon=True)

    def start(self) -> "OpenIdIssuer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return self.url + "/v1/.well-known/openidconfiguration"

    def token(self, *, audience: str, service_url: str, key: rsa.RSAPrivateKey | None = None,
              key_id: str = KEY_ID, issuer: str = ISSUER, expires_in: int = 3600) -> str:
        """A token as Bot Framework signs it for a call to the bot (or, with other arguments, a forged one)."""
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "serviceurl": service_url, "nbf": now - 60, "iat": now - 60,
                  "exp": now + expires_in}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": key_id})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 — http.server's name
                if self.path == "/v1/.well-known/openidconfiguration":
                    body = {"issuer": ISSUER, "jwks_uri": issuer.url + "/v1/keys",
                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == "/v1/keys":
                    public = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [{**public, "kid": KEY_ID, "use": "sig", "endorsements": ["msteams"]}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        return Handler
