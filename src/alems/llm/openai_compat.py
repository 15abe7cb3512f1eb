"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` server
(llama.cpp's server, llama-cpp-python's server, Ollama, vLLM, ...), over the standard
library's ``http.client`` (no client package needed).

Failure is typed and bounded in time:

- connection refused, DNS failure, reset, or no connection within ``connect_timeout_s``
  → :class:`~alems.llm.base.LLMUnavailable`;
- no complete answer within ``timeout_s`` (one deadline for the whole request: every
  socket read waits at most for the time left) → :class:`~alems.llm.base.LLMTimeout`;
- an HTTP error status, a body that is not a chat completion, or a missing ``usage``
  → :class:`~alems.llm.base.LLMHTTPError` (``.status`` holds the HTTP status, if any).

Unavailable, timed-out, 408, 429 and 5xx calls are retried ``retries`` times with
exponential backoff (``backoff_s``, ``2·backoff_s``, ...). The worst case of one
``complete`` is therefore about ``(retries+1)·(connect_timeout_s+timeout_s) + backoff_s·(2^retries−1)``.
Token counts come from the server's ``usage``; they are never estimated.

With ``stream=True`` the answer is read as server-sent events and ``ttft_s`` is the
time to the first content chunk; the server must honour ``stream_options.include_usage``
(OpenAI, vLLM and llama.cpp's server do; llama-cpp-python's server does not).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from alems.errors import ConfigError
from alems.llm.base import (
    Generation,
    LLMCallError,
    LLMHTTPError,
    LLMTimeout,
    LLMUnavailable,
    Message,
    Request,
    TimedBackend,
)

READ_CHUNK = 65536
MAX_BODY = 64 << 20


def is_local_host(host: str | None) -> bool:
    """True for loopback addresses and ``localhost``: energy measured here then includes the server host."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIBackend(TimedBackend):
    """Client of an OpenAI-compatible chat-completions server."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 1.0,
        stream: bool = False,
        response_format: str = "json_schema",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"llm.base_url {base_url!r} is not an http(s) URL",
                fix="set llm.base_url to the server's API root, e.g. http://127.0.0.1:8080/v1",
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path.rstrip("/") + "/chat/completions"
        self.url = f"{self.base_url}/chat/completions"
        self.api_key_env = api_key_env
        self._api_key: str | None = None
        if api_key_env:
            self._api_key = os.environ.get(api_key_env)
            if not self._api_key:
                raise ConfigError(
                    f"environment variable {api_key_env} (named by llm.api_key_env) is not set",
                    fix=f"export {api_key_env}=<your key>, or set llm.api_key_env: null for a server without keys",
                )
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.stream = bool(stream)
        self.response_format = response_format
        self._clock = clock
        self._sleep = sleep

    # ------------------------------------------------------------------ request body
    def payload(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: list[str] | None,
        json_schema: dict[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            "stream": self.stream,
        }
        if stop:
            body["stop"] = list(stop)
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if json_schema is not None and self.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tool_call", "schema": json_schema, "strict": True},
            }
        elif json_schema is not None and self.response_format == "json_object":
            body["response_format"] = {"type": "json_object", "schema": json_schema}
        return body

    # ------------------------------------------------------------------ protocol
    def generate(self, messages: list[Message], request: Request, t_start: float) -> Generation:
        """One exchange, retried (with backoff) while the failure is retryable and tries remain."""
        body = json.dumps(
            self.payload(
                messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed,
                stop=request.stop,
                json_schema=request.json_schema,
            )
        ).encode("utf-8")
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return self._once(body, t_start)
            except LLMCallError as exc:
                if not exc.retryable or attempt == attempts - 1:
                    exc.attempts = attempt + 1
                    if attempts > 1:
                        exc.message = f"{exc.message} (after {attempt + 1} of {attempts} attempts)"
                        exc.args = (exc.message,)
                    raise
                self._sleep(self.backoff_s * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ one HTTP exchange
    def _headers(self, n: int) -> dict[str, str]:
        h = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if self.stream else "application/json",
            "Content-Length": str(n),
            "User-Agent": "alems",
        }
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def _fail(
        self, cls: type[LLMCallError], msg: str, fix: str, *, retryable: bool, status: int | None = None
    ) -> LLMCallError:
        err = cls(msg, fix=fix)
        err.retryable = retryable
        err.status = status
        err.url = self.url
        return err

    def _unavailable(self, exc: BaseException) -> LLMCallError:
        return self._fail(
            LLMUnavailable,
            f"LLM server {self.base_url} is unreachable: {exc.__class__.__name__}: {exc}",
            f"start the server, or set llm.base_url to a running OpenAI-compatible server (now {self.base_url})",
            retryable=True,
        )

    def _timeout(self, waited: float) -> LLMCallError:
        return self._fail(
            LLMTimeout,
            f"LLM server {self.base_url} gave no complete answer within {self.timeout_s:g} s (waited {waited:.1f} s)",
            "raise llm.timeout_s, lower llm.max_tokens, or check the server's load",
            retryable=True,
        )

    def _once(self, body: bytes, t_call: float) -> Generation:
        t0 = self._clock()
        deadline = t0 + self.timeout_s

        def left() -> float:
            rem = deadline - self._clock()
            if rem <= 0:
                raise self._timeout(self._clock() - t0)
            return rem

        conn_cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_cls(self._host, self._port, timeout=min(self.connect_timeout_s, self.timeout_s))
        try:
            try:
                conn.connect()
            except TimeoutError as exc:
                raise self._unavailable(
                    TimeoutError(f"no connection within {min(self.connect_timeout_s, self.timeout_s):g} s")
                ) from exc
            except OSError as exc:
                raise self._unavailable(exc) from exc
            sock = conn.sock
            try:
                sock.settimeout(left())
                conn.request("POST", self._path, body=body, headers=self._headers(len(body)))
                sock.settimeout(left())
                resp = conn.getresponse()
                if resp.status >= 400:
                    raw = self._read_all(resp, sock, left)
                    raise self._http_status(resp.status, raw)
                if self.stream:
                    return self._parse_stream(self._iter_lines(resp, sock, left), t_call)
                return self._parse_body(self._read_all(resp, sock, left))
            except TimeoutError as exc:
                raise self._timeout(self._clock() - t0) from exc
            except (http.client.RemoteDisconnected, ConnectionError) as exc:
                raise self._unavailable(exc) from exc
            except (http.client.HTTPException, OSError) as exc:
                raise self._fail(
                    LLMHTTPError,
                    f"LLM server {self.base_url} broke the HTTP exchange: {exc.__class__.__name__}: {exc}",
                    "check that llm.base_url points at an OpenAI-compatible API root (ending in /v1)",
                    retryable=True,
                ) from exc
        finally:
            conn.close()

    @staticmethod
    def _read_all(resp: http.client.HTTPResponse, sock: socket.socket, left: Callable[[], float]) -> bytes:
        buf = bytearray()
        while True:
            sock.settimeout(left())
            chunk = resp.read1(READ_CHUNK)
            if not chunk:
                return bytes(buf)
            buf += chunk
            if len(buf) > MAX_BODY:
                raise http.client.HTTPException(f"response larger than {MAX_BODY} bytes")

    @staticmethod
    def _iter_lines(
        resp: http.client.HTTPResponse, sock: socket.socket, left: Callable[[], float]
    ) -> Iterator[bytes]:
        buf = b""
        while True:
            sock.settimeout(left())
            chunk = resp.read1(READ_CHUNK)
            if not chunk:
                if buf:
                    yield buf
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            yield from lines

    def _http_status(self, status: int, raw: bytes) -> LLMCallError:
        excerpt = raw[:300].decode("utf-8", "replace").strip()
        retryable = status in (408, 429) or status >= 500
        if status in (401, 403):
            fix = (
                f"check the API key in the environment variable named by llm.api_key_env ({self.api_key_env})"
            )
        elif status == 404:
            fix = f"check llm.base_url (now {self.base_url}, should be the API root ending in /v1) and llm.model ({self.model})"
        elif status in (400, 422):
            fix = "the server rejected the request: check llm.model, and llm.response_format (json_object for llama-cpp-python's server)"
        else:
            fix = "check the server's log; the call is retried up to llm.retries times"
        return self._fail(
            LLMHTTPError,
            f"LLM server {self.url} answered HTTP {status}: {excerpt}",
            fix,
            retryable=retryable,
            status=status,
        )

    def _bad_body(self, what: str) -> LLMCallError:
        return self._fail(
            LLMHTTPError,
            f"LLM server {self.url} sent an unusable answer: {what}",
            "use a server that implements OpenAI chat completions with token usage",
            retryable=False,
        )

    def _usage(self, usage: Any) -> tuple[int, int]:
        if not isinstance(usage, dict):
            raise self._bad_body("no token usage (A-LEMS never estimates token counts)")
        n_in, n_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(n_in, int) or not isinstance(n_out, int) or isinstance(n_in, bool):
            raise self._bad_body(f"token usage without integer prompt/completion counts: {usage!r}")
        return n_in, n_out

    def _parse_body(self, raw: bytes) -> Generation:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self._bad_body(f"not a chat completion: {raw[:200]!r}") from None
        n_in, n_out = self._usage(data.get("usage"))
        return Generation(text, n_in, n_out, str(finish))

    def _parse_stream(self, lines: Iterator[bytes], t_call: float) -> Generation:
        parts: list[str] = []
        finish = "stop"
        usage: Any = None
        ttft: float | None = None
        for line in lines:
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                event = json.loads(data)
            except ValueError:
                raise self._bad_body(f"stream event is not JSON: {data[:200]!r}") from None
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    if ttft is None:
                        ttft = self._clock() - t_call
                    parts.append(delta)
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
        if usage is None:
            raise self._bad_body(
                "the stream carried no token usage (stream_options.include_usage unsupported); set llm.stream: false"
            )
        n_in, n_out = self._usage(usage)
        return Generation("".join(parts), n_in, n_out, finish, ttft)

    # ------------------------------------------------------------------ provenance
    def provenance(self) -> dict[str, Any]:
        local = is_local_host(self._host)
        scope = (
            "host: the server runs on this machine but outside the measured process tree; "
            "cpu_share attribution does not credit its CPU time to the run"
            if local
            else "client only: the server is remote, its energy is not measured"
        )
        return {
            "backend": self.name,
            "model": self.model,
            "model_sha256": None,
            "server_url": self.base_url,
            "server_local": local,
            "client_side_only": not local,
            "energy_scope": scope,
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
            "connect_timeout_s": self.connect_timeout_s,
            "retries": self.retries,
            "backoff_s": self.backoff_s,
            "stream": self.stream,
            "response_format": self.response_format,
        }

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connection."""
