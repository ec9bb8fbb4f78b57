"""A real local HTTP server standing in for the SMS provider (services.sms talks to it as to
the real one)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.net import free_port


class SmsProvider:
    """Records each request (its JSON body, `auth` and `key`: the Authorization and
    Idempotency-Key headers); answers 503 to the first `fail_first[phone]` requests for a
    phone, then {"code": "OK"}."""

    def __init__(self, fail_first: dict[str, int] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = dict(fail_first or {})
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.received.append(
                    {
                        **body,
                        "auth": self.headers["Authorization"],
                        "key": self.headers["Idempotency-Key"],
                    }
                )
                left = outer.fail_first.get(body["phone"], 0)
                if left:
                    outer.fail_first[body["phone"]] = left - 1
                    self.send_response(503)
                    self.end_headers()
                    return
                out = json.dumps({"code": "OK"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms/send"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
