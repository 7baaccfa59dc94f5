"""Stand-in for GitHub's REST and GraphQL APIs and its release downloads (this machine
cannot reach github.com), for tests only.

Serves, on 127.0.0.1, what a pull-request review comment and the action's install need:
  GET   /repos/OWNER/REPO/issues/N/comments     list (one page)
  POST  /repos/OWNER/REPO/issues/N/comments     create
  PATCH /repos/OWNER/REPO/issues/comments/ID    update (POST too, as GitHub accepts it)
  POST  /graphql                                `query { viewer { login } }` only
  GET   any other path                          a file under --files DIR (release downloads:
                                                OWNER/REPO/releases/download/TAG/FILE)
API requests without a known token in `Authorization: Bearer TOKEN` (or `token TOKEN`) get
401, as GitHub answers. Known tokens: TOKEN (the workflow's, `github-actions[bot]`), every
token in the --tokens file the runner stand-in writes (a job's GITHUB_TOKEN with its
permissions: comments need `pull-requests: write` or `issues: write`, a fork's token never
writes), and `--user TOKEN=LOGIN` (a person, who may write). A refused write gets 403
"Resource not accessible by integration", as GitHub answers a fork's pull request. With
`--read-only`, TOKEN may not write either. Each comment keeps its author.
Every API request is appended to LOG as `METHOD PATH` (never the token); the comments are
kept in STATE (JSON) so that a test can read what a pull request shows.

Usage: python3 github_api_standin.py TOKEN LOG STATE [--read-only] [--tokens FILE]
       [--files DIR] [--user TOKEN=LOGIN]...   (prints `listening PORT`)
"""

import argparse
import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("token")
parser.add_argument("log")
parser.add_argument("state")
parser.add_argument("--read-only", action="store_true")
parser.add_argument("--tokens", default="")
parser.add_argument("--files", default="")
parser.add_argument("--user", action="append", default=[])
args = parser.parse_args()
TOKEN, LOG, STATE, READ_ONLY = args.token, args.log, args.state, args.read_only
PEOPLE = dict(u.split("=", 1) for u in args.user)
BOT = "github-actions[bot]"
comments = []
next_id = [1000]


def user_json(login):
    user = {
        "login": login,
        "id": 41898282 if login == BOT else 1000 + len(login),
        "node_id": "MDM6Qm90NDE4OTgyODI=",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
        "gravatar_id": "",
    }
    for field in ["avatar_url", "url", "html_url", "followers_url", "following_url", "gists_url",
                  "starred_url", "subscriptions_url", "organizations_url", "repos_url",
                  "events_url", "received_events_url"]:
        user[field] = "https://github.example/users/%s" % login
    return user


def identify(auth):
    """(login, may write comments) of a token, or None when GitHub would answer 401."""
    token = auth.split(" ", 1)[1] if auth.startswith(("Bearer ", "token ")) else None
    if token is None:
        return None
    if token == TOKEN:
        return BOT, not READ_ONLY
    if token in PEOPLE:
        return PEOPLE[token], True
    if args.tokens and os.path.exists(args.tokens):
        job = json.load(open(args.tokens)).get(token)
        if job:
            perms = job.get("permissions", {})
            write = "write" in (perms.get("pull-requests"), perms.get("issues"))
            return BOT, write and not job.get("fork")
    return None


def comment_json(base, owner, repo, number, c):
    return {
        "id": c["id"],
        "node_id": "IC_%d" % c["id"],
        "url": "%s/repos/%s/%s/issues/comments/%d" % (base, owner, repo, c["id"]),
        "html_url": "https://github.example/%s/%s/pull/%d#issuecomment-%d" % (owner, repo, number, c["id"]),
        "issue_url": "%s/repos/%s/%s/issues/%d" % (base, owner, repo, number),
        "body": c["body"],
        "user": user_json(c["user"]),
        "author_association": "NONE",
        "created_at": "2026-11-27T12:00:00Z",
        "updated_at": "2026-11-27T12:00:00Z",
    }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self, method):
        path = self.path.split("?")[0]
        is_api = path.startswith("/repos/") or path == "/graphql"
        if method == "GET" and not is_api and args.files:
            return self.serve_file(path)
        with open(LOG, "a") as log:
            log.write("%s %s\n" % (method, path))
        who = identify(self.headers.get("Authorization", ""))
        if who is None:
            return self.reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        login, may_write = who
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if path == "/graphql" and method == "POST":
            if re.fullmatch(r"\s*(query\s*)?\{\s*viewer\s*\{\s*login\s*\}\s*\}\s*", body.get("query", "")):
                return self.reply(200, {"data": {"viewer": {"login": login}}})
            return self.reply(200, {"errors": [{"message": "the stand-in answers only viewer { login }"}]})
        if not may_write and method != "GET":
            return self.reply(403, {"message": "Resource not accessible by integration",
                                    "documentation_url": "https://docs.github.com/rest"})
        base = "http://%s" % self.headers.get("Host")
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path)
        if m and method == "GET":
            owner, repo, n = m.group(1), m.group(2), int(m.group(3))
            return self.reply(200, [comment_json(base, owner, repo, n, c) for c in comments if c["issue"] == n])
        if m and method == "POST":
            owner, repo, n = m.group(1), m.group(2), int(m.group(3))
            next_id[0] += 1
            c = {"id": next_id[0], "issue": n, "body": body["body"], "user": login}
            comments.append(c)
            self.save()
            return self.reply(201, comment_json(base, owner, repo, n, c))
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)", path)
        if m and method in ("PATCH", "POST"):
            # As on GitHub, a token that may write comments may edit anyone's.
            for c in comments:
                if c["id"] == int(m.group(3)):
                    c["body"] = body["body"]
                    self.save()
                    return self.reply(200, comment_json(base, m.group(1), m.group(2), c["issue"], c))
        return self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

    def serve_file(self, path):
        target = os.path.realpath(os.path.join(args.files, path.lstrip("/")))
        if not target.startswith(os.path.realpath(args.files) + os.sep) or not os.path.isfile(target):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(target, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def save(self):
        with open(STATE, "w") as f:
            json.dump(comments, f)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
