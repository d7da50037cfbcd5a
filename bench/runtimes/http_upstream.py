"""bench/runtimes: a small HTTP/1.1 keep-alive upstream in Python (stdlib only).

Listens on 127.0.0.1:$PORT (as sluice's http runtime starts it). GET /healthz answers
200 "ok"; POST / answers 200 with the request body (and its Content-Type). One thread
per connection (ThreadingHTTPServer), connections kept alive. No request log.

Used twice by runtimes_bench.cc (row http-python): as the function of an HttpRuntime,
and as the target of a direct Beast keep-alive POST loop (the baseline).
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # status line, headers and body leave in one write (flushed per request)

    def _answer(self, body, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self._answer(b"ok", "text/plain")
        else:
            self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self._answer(body, self.headers.get("Content-Type") or "application/octet-stream")

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
