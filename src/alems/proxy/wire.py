"""What the proxy reads and rewrites on the wire: the upstream URL, the headers it never
forwards, token usage from a response or a stream, and secrets blanked out of error text."""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from alems.errors import ConfigError

#: Paths whose POST is an LLM call (recorded as an LLM phase).
RECORDED_SUFFIXES: tuple[str, ...] = ("/chat/completions", "/completions")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "expect",
    }
)
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|api)[-_][A-Za-z0-9_\-*.]{6,}", re.IGNORECASE)
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Upstream:
    """The upstream server: scheme, host, port and base path (``/v1`` is not doubled)."""

    scheme: str
    host: str
    port: int
    base_path: str
    url: str

    @classmethod
    def parse(cls, url: str) -> Upstream:
        u = urlsplit(url.strip())
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(
                f"upstream {url!r} is not an http(s) URL", "pass e.g. --upstream http://127.0.0.1:8080"
            )
        port = u.port or (443 if u.scheme == "https" else 80)
        return cls(
            u.scheme,
            u.hostname,
            port,
            u.path.rstrip("/"),
            f"{u.scheme}://{u.hostname}:{port}{u.path.rstrip('/')}",
        )

    def target(self, path: str) -> str:
        """The upstream path for a client path: ``/v1/x`` on base ``/v1`` stays ``/v1/x``."""
        base = self.base_path
        if base.endswith("/v1") and (path == "/v1" or path.startswith("/v1/")):
            base = base[: -len("/v1")]
        return base + path

    def connection(self, timeout_s: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout_s)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every given secret and anything shaped like an API key replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _KEYLIKE.sub("***", text)


def usage_tokens(obj: Any) -> tuple[int | None, int | None]:
    """``(prompt_tokens, completion_tokens)`` of a response or chunk's ``usage`` (None if absent)."""
    usage = obj.get("usage") if isinstance(obj, dict) else None
    if not isinstance(usage, dict):
        return None, None

    def num(key: str) -> int | None:
        v = usage.get(key)
        return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    return num("prompt_tokens"), num("completion_tokens")


def error_text(body: bytes) -> str:
    """The message of an upstream error body (JSON ``error.message`` where there is one), cut short."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:MAX_ERROR_CHARS].decode(errors="replace").strip()
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)[:MAX_ERROR_CHARS]
    return str(err or obj)[:MAX_ERROR_CHARS]


def _has_content(obj: Any) -> bool:
    """A chat or text completion chunk that carries generated text."""
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(choices, list):
        return False
    for c in choices:
        if not isinstance(c, dict):
            continue
        delta = c.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else c.get("text")
        if isinstance(text, str) and text:
            return True
    return False


class SseUsage:
    """Follows a server-sent event stream as it is relayed; keeps the last ``usage`` seen,
    counts the chunks that carry content (``content_chunks``: one token each where the server
    streams token by token, as llama.cpp's servers do) and stamps the first of them
    (``first_content_t`` on ``clock``)."""

    def __init__(self, clock: Any = None) -> None:
        self._buf = b""
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.error: str | None = None
        self.content_chunks = 0
        self.first_content_t: float | None = None
        self._clock = clock

    def feed(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            self._line(line.strip())

    def close(self) -> None:
        if self._buf.strip():
            self._line(self._buf.strip())
        self._buf = b""

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            return
        try:
            obj = json.loads(payload)
        except ValueError:
            return
        if _has_content(obj):
            self.content_chunks += 1
            if self.first_content_t is None and self._clock is not None:
                self.first_content_t = float(self._clock())
        tin, tout = usage_tokens(obj)
        if tin is not None or tout is not None:
            self.tokens_in, self.tokens_out = tin, tout
        if isinstance(obj, dict) and obj.get("error"):
            self.error = str(obj["error"].get("message") if isinstance(obj["error"], dict) else obj["error"])
