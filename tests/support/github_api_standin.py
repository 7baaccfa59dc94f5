"""Stand-in for GitHub's REST API (this machine cannot reach api.github.com), for tests only.

Serves the issue-comment endpoints a pull-request review comment needs, on 127.0.0.1:
  GET   /repos/OWNER/REPO/issues/N/comments     list (one page)
  POST  /repos/OWNER/REPO/issues/N/comments     create
  PATCH /repos/OWNER/REPO/issues/comments/ID    update (POST too, as GitHub accepts it)
Requests without `Authorization: Bearer TOKEN` (or `token TOKEN`) get 401, as GitHub answers.
With `--read-only`, writes get 403 "Resource not accessible by integration", as GitHub
answers a pull request from a fork, whose GITHUB_TOKEN can read but not write.
Every request is appended to LOG as `METHOD PATH` (never the token); the comments are kept
in STATE (JSON) so that a test can read what a pull request shows.

Usage: python3 github_api_standin.py TOKEN LOG STATE [--read-only]   (prints `listening PORT`)
"""

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN, LOG, STATE = sys.argv[1], sys.argv[2], sys.argv[3]
READ_ONLY = "--read-only" in sys.argv[4:]
comments = []
next_id = [1000]

USER = {
    "login": "github-actions[bot]",
    "id": 41898282,
    "node_id": "MDM6Qm90NDE4OTgyODI=",
    "type": "Bot",
    "site_admin": False,
    "gravatar_id": "",
}
for field in ["avatar_url", "url", "html_url", "followers_url", "following_url", "gists_url",
              "starred_url", "subscriptions_url", "organizations_url", "repos_url",
              "events_url", "received_events_url"]:
    USER[field] = "https://github.example/users/github-actions"


def comment_json(base, owner, repo, number, c):
    return {
        "id": c["id"],
        "node_id": "IC_%d" % c["id"],
        "url": "%s/repos/%s/%s/issues/comments/%d" % (base, owner, repo, c["id"]),
        "html_url": "https://github.example/%s/%s/pull/%d#issuecomment-%d" % (owner, repo, number, c["id"]),
        "issue_url": "%s/repos/%s/%s/issues/%d" % (base, owner, repo, number),
        "body": c["body"],
        "user": USER,
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
        with open(LOG, "a") as log:
            log.write("%s %s\n" % (method, path))
        auth = self.headers.get("Authorization", "")
        if auth not in ("Bearer " + TOKEN, "token " + TOKEN):
            return self.reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if READ_ONLY and method != "GET":
            return self.reply(403, {"message": "Resource not accessible by integration",
                                    "documentation_url": "https://docs.github.com/rest"})
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        base = "http://%s" % self.headers.get("Host")
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", path)
        if m and method == "GET":
            owner, repo, n = m.group(1), m.group(2), int(m.group(3))
            return self.reply(200, [comment_json(base, owner, repo, n, c) for c in comments if c["issue"] == n])
        if m and method == "POST":
            owner, repo, n = m.group(1), m.group(2), int(m.group(3))
            next_id[0] += 1
            c = {"id": next_id[0], "issue": n, "body": body["body"]}
            comments.append(c)
            self.save()
            return self.reply(201, comment_json(base, owner, repo, n, c))
        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)", path)
        if m and method in ("PATCH", "POST"):
            for c in comments:
                if c["id"] == int(m.group(3)):
                    c["body"] = body["body"]
                    self.save()
                    return self.reply(200, comment_json(base, m.group(1), m.group(2), c["issue"], c))
        return self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

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
