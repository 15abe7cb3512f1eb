"""A small fake OpenAI-compatible server for tests, on 127.0.0.1 and a free port.

It answers ``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions`` (streaming
and not) with fixed token counts, and keeps what it received (paths, bodies and
``Authorization`` headers) so tests can check what the proxy forwarded. Switches:

* ``status``: answer every completion with this HTTP status and an error body;
* ``hang``: accept completions and never answer (for timeout tests; released at ``close``);
* ``gate``: a :class:`threading.Event` a stream waits on after its first chunk (bounded by
  ``gate_timeout_s``); ``gate_opened`` records whether it opened in time.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
STREAM_PIECES = ["The ", "answer ", "is ", "42."]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.hang = False
        self.gate: threading.Event | None = None
        self.gate_timeout_s = 10.0
        self.gate_opened: bool | None = None
        self.stream_usage = True  # False: a stream without usage (as llama-cpp-python's server sends)
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a: Any) -> None:
                pass

            def _json(self, status: int, obj: Any) -> None:
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
                self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                owner.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                if owner.hang:
                    owner._release.wait(30)
                    return
                if owner.status >= 400:
                    self._json(
                        owner.status,
                        {"error": {"message": "model overloaded; key sk-leaked-abcdef123 rejected"}},
                    )
                    return
                usage = {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": COMPLETION_TOKENS,
                    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                }
                chat = self.path.endswith("/chat/completions")
                if body.get("stream"):
                    self._stream(chat, usage)
                    return
                choice = (
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(STREAM_PIECES)},
                        "finish_reason": "stop",
                    }
                    if chat
                    else {"index": 0, "text": "".join(STREAM_PIECES), "finish_reason": "stop"}
                )
                self._json(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion" if chat else "text_completion",
                        "model": body.get("model"),
                        "choices": [choice],
                        "usage": usage,
                    },
                )

            def _stream(self, chat: bool, usage: dict[str, int]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i, piece in enumerate(STREAM_PIECES):
                    delta = {"delta": {"content": piece}} if chat else {"text": piece}
                    self.wfile.write(
                        b"data: " + json.dumps({"choices": [{"index": 0, **delta}]}).encode() + b"\n\n"
                    )
                    self.wfile.flush()
                    if i == 0 and owner.gate is not None:
                        owner.gate_opened = owner.gate.wait(owner.gate_timeout_s)
                final: dict[str, Any] = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                if owner.stream_usage:
                    final["usage"] = usage
                self.wfile.write(b"data: " + json.dumps(final).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    """A :class:`FakeOpenAI` for one test (import this fixture into a test module)."""
    fake = FakeOpenAI()
    yield fake
    fake.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


AGENT_SCRIPT = '''\
"""Two chat calls through OPENAI_BASE_URL (one plain, one streamed), then the answer."""
import json, os, sys, urllib.request

base = os.environ["OPENAI_BASE_URL"]


def chat(content, stream=False):
    body = {"model": "fake-model", "messages": [{"role": "user", "content": content}], "stream": stream}
    req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer sk-local-test"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


chat("What is 6 x 7?")
chat("Are you sure?", stream=True)
print(sys.argv[1] if len(sys.argv) > 1 else "Answer: 42")
'''
