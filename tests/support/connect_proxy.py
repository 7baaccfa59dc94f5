"""An HTTPS forward proxy standing in for the network (this machine has no internet), for
tests only: a client that honours HTTPS_PROXY sends `CONNECT HOST:PORT`; a host named with
`--map HOST:PORT=127.0.0.1:LOCAL` is tunnelled to that local server (which serves TLS for
HOST with a certificate of the test's own CA), every other host is refused with 403, so
that nothing leaves the machine and a test sees what would have. Each request is logged to
LOG as `CONNECT HOST:PORT -> TARGET` or `CONNECT HOST:PORT refused`.

usage: connect_proxy.py LOG --map HOST:PORT=ADDR:PORT [--map ...]   (prints `listening PORT`)
"""

import argparse
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("log")
parser.add_argument("--map", action="append", default=[])
args = parser.parse_args()
ROUTES = {}
for m in args.map:
    src, dst = m.split("=", 1)
    host, port = dst.rsplit(":", 1)
    ROUTES[src.lower()] = (host, int(port))
lock = threading.Lock()


def log(line):
    with lock, open(args.log, "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_CONNECT(self):
        target = ROUTES.get(self.path.lower())
        if target is None:
            log("CONNECT %s refused" % self.path)
            self.send_error(403, "the test proxy reaches only its mapped hosts")
            return
        log("CONNECT %s -> %s:%d" % (self.path, target[0], target[1]))
        try:
            upstream = socket.create_connection(target)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        client = self.connection
        sockets = [client, upstream]
        try:
            while True:
                ready, _, broken = select.select(sockets, [], sockets, 60)
                if broken or not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        finally:
            upstream.close()

    def do_GET(self):
        log("GET %s refused" % self.path)
        self.send_error(403, "the test proxy tunnels HTTPS only")

    do_POST = do_PUT = do_HEAD = do_GET


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
