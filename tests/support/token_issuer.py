#!/usr/bin/env python3
"""A small token issuer for the registry's bearer-token auth, as GHCR uses it (tests only).

The registry is the real CNCF Distribution; only the token service, which GitHub runs for
GHCR, is stood in here. It answers GET /token?service=…&scope=repository:NAME:ACTIONS with
a JWT signed by an ES256 key whose certificate (in the x5c header) the registry trusts.
Anonymous callers get `pull` on repositories under `public/`; the one user named on the
command line gets what it asks for, except `push` under `readonly/`; wrong credentials
get 401.

With `--tokens FILE` (written by the Actions runner stand-in), a job's GITHUB_TOKEN is a
password too, under any user name, as GHCR takes it: `packages: read` grants `pull`,
`packages: write` grants `pull` and `push`, no `packages` grants nothing.

usage: token_issuer.py PORT KEY_PEM CERT_PEM USER PASSWORD SERVICE ISSUER [--tokens FILE]
"""
import base64
import json
import os
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography import x509

PORT, KEY, CERT, USER, PASSWORD, SERVICE, ISSUER = sys.argv[1:8]
TOKENS = sys.argv[9] if sys.argv[8:9] == ["--tokens"] else None


def job_token(password):
    """The `packages` permission of a job's GITHUB_TOKEN, or None when it is not one."""
    if not TOKENS or not os.path.exists(TOKENS):
        return None
    job = json.load(open(TOKENS)).get(password)
    return None if job is None else job.get("permissions", {}).get("packages", "none")
key = serialization.load_pem_private_key(open(KEY, "rb").read(), password=None)
cert = x509.load_pem_x509_certificate(open(CERT, "rb").read())
x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims: dict) -> str:
    header = {"typ": "JWT", "alg": "ES256", "x5c": x5c}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_response(404)
            self.end_headers()
            return
        query = parse_qs(url.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            packages = job_token(password)
            if packages is not None:
                user, allowed = name, {"none": [], "read": ["pull"], "write": ["pull", "push"]}[packages]
            elif name != USER or password != PASSWORD:
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
                return
            else:
                user, allowed = name, None
        else:
            allowed = None
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) < 3 or parts[0] != "repository":
                    continue
                name, wanted = ":".join(parts[1:-1]), parts[-1].split(",")
                if allowed is not None:
                    granted = [a for a in wanted if a in allowed]
                elif user and name.startswith("readonly/"):
                    granted = [a for a in wanted if a == "pull"]
                elif user:
                    granted = wanted
                elif name.startswith("public/"):
                    granted = [a for a in wanted if a == "pull"]
                else:
                    granted = []
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        token = sign({
            "iss": ISSUER, "sub": user or "", "aud": query.get("service", [SERVICE])[0],
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()),
            "access": access,
        })
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
