"""A fake Zendesk + Gorgias API on 127.0.0.1, for the integration tests.

It implements the calls storetune makes (Zendesk `PUT /api/v2/tickets/{id}.json`,
Gorgias `POST /api/tickets/{id}/messages` and `/tags`) with their basic auth and the
body checks a real helpdesk would refuse, records what it accepted, and answers 500
while `down` is set or for the next `fail_next` requests.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ZENDESK_USER, ZENDESK_TOKEN = "bot@store.test/token", "zd-token-123"
GORGIAS_USER, GORGIAS_KEY = "bot@store.test", "gg-key-456"

ZENDESK_TICKET = re.compile(r"^/api/v2/tickets/(\d+)\.json$")
GORGIAS_MESSAGES = re.compile(r"^/api/tickets/(\d+)/messages$")
GORGIAS_TAGS = re.compile(r"^/api/tickets/(\d+)/tags$")


@dataclass
class Call:
    helpdesk: str
    kind: str  # comment | message | tags
    ticket: str
    body: dict


class FakeHelpdesk:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.failures = 0  # requests answered 500
        self.down = False
        self.fail_next = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHelpdesk:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, helpdesk: str, ticket: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.helpdesk == helpdesk and c.ticket == ticket]

    # ---- one request ----

    def answer(self, method: str, path: str, auth: str, body: bytes) -> tuple[int, dict]:
        with self.lock:
            if self.down or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                self.failures += 1
                return 500, {"error": "InternalError"}
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "invalid JSON"}
        if m := ZENDESK_TICKET.match(path):
            return self._zendesk(method, m.group(1), auth, data)
        for pattern, kind in ((GORGIAS_MESSAGES, "message"), (GORGIAS_TAGS, "tags")):
            if m := pattern.match(path):
                return self._gorgias(method, kind, m.group(1), auth, data)
        return 404, {"error": "RecordNotFound"}

    def _zendesk(self, method: str, ticket: str, auth: str, data: dict) -> tuple[int, dict]:
        if method != "PUT":
            return 405, {"error": "method"}
        if auth != _basic(ZENDESK_USER, ZENDESK_TOKEN):
            return 401, {"error": "Couldn't authenticate you"}
        comment = data.get("ticket", {}).get("comment", {})
        if not isinstance(comment.get("body"), str) or not isinstance(comment.get("public"), bool):
            return 422, {"error": "RecordInvalid", "description": "comment body and public"}
        self._record(Call("zendesk", "comment", ticket, data["ticket"]))
        tags = data["ticket"].get("additional_tags", [])
        return 200, {"ticket": {"id": int(ticket), "tags": tags}}

    def _gorgias(
        self, method: str, kind: str, ticket: str, auth: str, data: dict
    ) -> tuple[int, dict]:
        if method != "POST":
            return 405, {"error": "method"}
        if auth != _basic(GORGIAS_USER, GORGIAS_KEY):
            return 401, {"error": "Unauthorized"}
        if kind == "tags" and not isinstance(data.get("names"), list):
            return 400, {"error": "names or ids required"}
        if kind == "message":
            required = ("channel", "via", "from_agent", "sender")
            if any(k not in data for k in required) or not data.get("body_text"):
                return 400, {"error": f"required: {required} and body_text"}
            if data["channel"] != "internal-note" and not data.get("receiver"):
                return 400, {"error": "an outgoing message needs a receiver"}
        self._record(Call("gorgias", kind, ticket, data))
        return 201, {"id": len(self.calls), "ticket_id": int(ticket)}

    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _handler(fake: FakeHelpdesk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            auth = self.headers.get("Authorization", "")
            status, answer = fake.answer(self.command, self.path, auth, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_PUT = do_POST = _serve

        def log_message(self, *args) -> None:  # quiet test output
            pass

    return Handler
