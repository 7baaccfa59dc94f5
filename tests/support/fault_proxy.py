"""A fault-injecting HTTP proxy in front of a registry on 127.0.0.1, for tests only.

Every request is forwarded to the upstream registry as it came (Host kept, so the upload
locations the registry answers point back here), except those a fault is drawn for:
  503       answered `503 Service Unavailable` (a registry error envelope), not forwarded
  429       answered `429 Too Many Requests` with `Retry-After: 1`, not forwarded
  reset     the connection is reset without an answer: half of the time before the
            request reaches the registry, half of the time after it did (a write that
            happened, whose answer was lost)
  truncate  forwarded; the answer's headers announce the whole body, half of it is sent,
            then the connection is closed
Faults are drawn from a seeded generator, one draw per request in arrival order, so a
schedule is the same whenever requests arrive in the same order.

Rules for one-off or permanent faults (METHOD and a regular expression on the path):
  --always METHOD:REGEX:STATUS          answer STATUS to every matching request
  --once METHOD:REGEX:STATUS[:SECONDS]  answer STATUS (with Retry-After) to the first one
  --truncate-once METHOD:REGEX          truncate the answer to the first one
Each request is logged to LOG as `N METHOD PATH OUTCOME` (no query, no header).

`--latency MS` holds every request that long before it is answered or forwarded: a
registry across a network, for benchmarks (`benches/mirror.sh`). `--timestamps` ends each
log line with `@SECONDS` since the proxy started (when a client asked, not just what).

`GET /_proxy?upstream=PORT&seed=S&rate=R` (answered by the proxy itself) points it at
another registry and starts a new schedule, so that one proxy address serves many runs.

usage: fault_proxy.py UPSTREAM_PORT LOG [--seed S] [--rate R] [--kinds K,K] [--latency MS] [rules]
prints `listening PORT`
"""

import argparse
import http.client
import random
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("upstream", type=int)
parser.add_argument("log")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--rate", type=float, default=0.0)
parser.add_argument("--kinds", default="503,429,reset,truncate")
parser.add_argument("--always", action="append", default=[])
parser.add_argument("--once", action="append", default=[])
parser.add_argument("--truncate-once", action="append", default=[])
parser.add_argument("--latency", type=float, default=0.0)
parser.add_argument("--timestamps", action="store_true")
args = parser.parse_args()

lock = threading.Lock()
rng = random.Random(args.seed)
kinds = [k for k in args.kinds.split(",") if k]
counter = [0]
used_once = set()
class Log:
    """The request log; with --timestamps each line ends with `@SECONDS` since the start."""

    def __init__(self, path):
        self.file = open(path, "a", buffering=1)
        self.started = time.monotonic()

    def write(self, line):
        if args.timestamps:
            line = "%s @%.3f\n" % (line.rstrip("\n"), time.monotonic() - self.started)
        self.file.write(line)


log = Log(args.log)


def rule(text):
    method, rest = text.split(":", 1)
    return method, rest


always = []
for text in args.always:
    method, rest = rule(text)
    regex, status = rest.rsplit(":", 1)
    always.append((method, re.compile(regex), int(status)))
once = []
for i, text in enumerate(args.once):
    method, rest = rule(text)
    parts = rest.rsplit(":", 2)
    if len(parts) == 3 and parts[2].isdigit() and parts[1].isdigit():
        regex, status, wait = parts
    else:
        regex, status = rest.rsplit(":", 1)
        wait = None
    once.append((("once", i), method, re.compile(regex), int(status), wait))
truncate_once = []
for i, text in enumerate(args.truncate_once):
    method, regex = rule(text)
    truncate_once.append((("truncate", i), method, re.compile(regex)))


def decide(method, path):
    """The fault for this request, and its number."""
    with lock:
        counter[0] += 1
        n = counter[0]
        for m, regex, status in always:
            if m == method and regex.search(path):
                return n, ("status", status, None)
        for key, m, regex, status, wait in once:
            if key not in used_once and m == method and regex.search(path):
                used_once.add(key)
                return n, ("status", status, wait)
        for key, m, regex in truncate_once:
            if key not in used_once and m == method and regex.search(path):
                used_once.add(key)
                return n, ("truncate", None, None)
        draw = rng.random()
        kind = rng.choice(kinds) if kinds else None
        after = rng.random() < 0.5
        if draw >= args.rate or kind is None:
            return n, None
        if kind == "503":
            return n, ("status", 503, None)
        if kind == "429":
            return n, ("status", 429, "1")
        if kind == "reset":
            return n, ("reset-after" if after else "reset", None, None)
        return n, ("truncate", None, None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def answer(self, status, retry_after):
        code = {429: "TOOMANYREQUESTS", 404: "NAME_UNKNOWN", 401: "UNAUTHORIZED", 403: "DENIED"}.get(
            status, "UNAVAILABLE")
        text = ('{"errors":[{"code":"%s","message":"injected fault"}]}' % code).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)

    def control(self):
        from urllib.parse import parse_qs, urlparse
        query = parse_qs(urlparse(self.path).query)
        global rng
        with lock:
            if "upstream" in query:
                args.upstream = int(query["upstream"][0])
            if "rate" in query:
                args.rate = float(query["rate"][0])
            rng = random.Random(int(query.get("seed", [args.seed])[0]))
            counter[0] = 0
            used_once.clear()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def handle_any(self):
        path = self.path.split("?")[0]
        data = self.body()
        if path == "/_proxy":
            return self.control()
        if args.latency:
            time.sleep(args.latency / 1000)
        n, fault = decide(self.command, path)
        outcome = fault[0] if fault else "forwarded"
        if fault and fault[0] == "status":
            log.write(f"{n} {self.command} {path} {fault[1]}\n")
            return self.answer(fault[1], fault[2])
        if fault and fault[0] == "reset":
            log.write(f"{n} {self.command} {path} reset\n")
            return self.reset()
        upstream = http.client.HTTPConnection("127.0.0.1", args.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
        headers["Content-Length"] = str(len(data))
        upstream.request(self.command, self.path, body=data, headers=headers)
        resp = upstream.getresponse()
        if fault and fault[0] == "reset-after":
            resp.read()
            upstream.close()
            log.write(f"{n} {self.command} {path} reset-after-{resp.status}\n")
            return self.reset()
        body = resp.read()
        upstream.close()
        truncate = fault and fault[0] == "truncate" and self.command != "HEAD" and len(body) > 1
        if fault and fault[0] == "truncate" and not truncate:
            log.write(f"{n} {self.command} {path} reset\n")
            return self.reset()
        log.write(f"{n} {self.command} {path} {resp.status}{' truncated' if truncate else ''}\n")
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a reset connection is what this proxy is for


server = Server(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
