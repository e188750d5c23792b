"""A small HTTP service for supervisord to run in the tests: it answers as its arguments say.

    python answering_server.py NAME PORT MODE

MODE is ``ok`` (200, body ``backend=NAME path=...``), ``502`` (a 502 from a service that is up),
``slow`` (200 after 5 s) or ``close`` (reads the request, closes the connection without a word).
Listens on 127.0.0.1 only. On SIGTERM (supervisorctl stop) it stops taking connections and lets the
requests it holds finish, as a gunicorn master does.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        mode = self.server.mode
        if mode == "close":
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(5)
        body = f"backend={self.server.name} path={self.path}\n".encode()
        self.send_response(502 if mode == "502" else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close waits for the requests in flight
    allow_reuse_address = True
    request_queue_size = 128


def main() -> None:
    name, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = Server(("127.0.0.1", port), Handler)
    server.name, server.mode = name, mode

    def stop(signum, frame) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


if __name__ == "__main__":
    main()
