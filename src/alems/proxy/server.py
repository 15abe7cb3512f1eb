"""The proxy server: :class:`LlmProxy` (a threaded HTTP server on loopback) and the handler
that relays each request to the upstream and records completion calls into the sink."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alems.errors import ConfigError
from alems.proxy.sinks import LlmSink
from alems.proxy.wire import (
    HOP_BY_HOP,
    MAX_ERROR_CHARS,
    RECORDED_SUFFIXES,
    SseUsage,
    Upstream,
    error_text,
    redact,
    usage_tokens,
)

log = logging.getLogger("alems.proxy")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _ThreadingHTTPServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class LlmProxy:
    """The proxy server. ``start()`` listens (port 0: a free one) and serves on a daemon
    thread; ``stop()`` waits up to ``grace_s`` for calls in flight, then shuts down.

    >>> # with LlmProxy("http://127.0.0.1:8080", sink) as p: os.environ["OPENAI_BASE_URL"] = p.base_url
    """

    def __init__(
        self,
        upstream: str,
        sink: LlmSink,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ConfigError(
                "proxy timeouts must be positive", "pass e.g. --connect-timeout 10 --read-timeout 600"
            )
        self.upstream = Upstream.parse(upstream)
        self.sink = sink
        self.host = host
        self.port = int(port)
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.clock = clock
        self.calls = 0
        self.errors = 0
        self._in_flight = 0
        self._cv = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if host not in LOOPBACK:
            log.warning(
                "proxy listening on %s, not loopback: anyone who can reach it can use the upstream", host
            )

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` / ``OPENAI_API_BASE`` should be for a client."""
        return self.url + "/v1"

    def start(self) -> LlmProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server_cls = _ThreadingHTTPServer6 if ":" in self.host else ThreadingHTTPServer
        self._server = server_cls((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="alems-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, grace_s: float = 5.0) -> None:
        """Wait up to ``grace_s`` for calls in flight (they record their end), then stop serving."""
        if self._server is None:
            return
        deadline = time.monotonic() + grace_s
        with self._cv:
            while self._in_flight and time.monotonic() < deadline:
                self._cv.wait(timeout=max(0.0, deadline - time.monotonic()))
            if self._in_flight:
                log.warning("proxy stopped with %d call(s) still in flight", self._in_flight)
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        if self._thread is not None:
            self._thread.join(timeout=grace_s)
            self._thread = None

    def __enter__(self) -> LlmProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _enter_call(self) -> None:
        with self._cv:
            self._in_flight += 1

    def _leave_call(self, failed: bool) -> None:
        with self._cv:
            self._in_flight -= 1
            self.calls += 1
            self.errors += int(failed)
            self._cv.notify_all()


class _Handler(BaseHTTPRequestHandler):
    """One client connection; :meth:`_forward` does the work for every method."""

    owner: LlmProxy
    protocol_version = "HTTP/1.1"
    server_version = "alems-proxy"
    timeout = 120.0  # seconds a client socket may stay silent (an idle keep-alive connection closes)
    disable_nagle_algorithm = (
        True  # small writes (headers, stream chunks) leave at once, no 40 ms delayed-ACK stall
    )

    def log_message(self, format: str, *args: Any) -> None:
        # the request line only, never headers; a query string may carry a key, so it is blanked
        log.debug("%s %s", self.address_string(), re.sub(r"\?\S*", "?***", format % args))

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    # ------------------------------------------------------------------ request
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _secrets(self) -> tuple[str, ...]:
        auth = self.headers.get("Authorization", "")
        token = auth.split(None, 1)[1] if " " in auth else auth
        return tuple(
            s for s in (auth, token, self.headers.get("api-key", ""), self.headers.get("x-api-key", "")) if s
        )

    def _send_json(self, status: int, message: str, kind: str) -> None:
        body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client went away; the call's error is recorded anyway

    def _forward(self) -> None:
        p = self.owner
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        record = self.command == "POST" and path.rstrip("/").endswith(RECORDED_SUFFIXES)
        model = None
        if record:
            try:
                req = json.loads(body or b"{}")
                model = req.get("model") if isinstance(req, dict) else None
            except ValueError:
                req = None
        phase = p.sink.llm_start(name=str(model) if model is not None else None) if record else None
        if record:
            p._enter_call()
        result: dict[str, Any] = {"tokens_in": None, "tokens_out": None, "error": None, "status": None}
        self._t_request = time.monotonic()
        try:
            self._relay(body, result)
        finally:
            if record:
                if result["error"]:
                    result["error"] = redact(str(result["error"]), self._secrets())
                p.sink.llm_end(phase, **result)
                p._leave_call(bool(result["error"]))
                log.info(
                    "%s %s -> %s (tokens %s/%s)%s",
                    self.command,
                    path,
                    result["status"],
                    result["tokens_in"],
                    result["tokens_out"],
                    f" error: {result['error']}" if result["error"] else "",
                )

    def _relay(self, body: bytes, result: dict[str, Any]) -> None:
        p = self.owner
        up = p.upstream
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command == "POST":
            headers["Content-Length"] = str(len(body))
        conn = up.connection(p.connect_timeout_s)
        try:
            try:
                conn.connect()
                conn.sock.settimeout(p.read_timeout_s)
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request(self.command, up.target(self.path), body=body or None, headers=headers)
                resp = conn.getresponse()
            except TimeoutError as exc:
                what = "connect" if conn.sock is None else "response"
                limit = p.connect_timeout_s if conn.sock is None else p.read_timeout_s
                msg = f"upstream {up.url} timed out ({what}, {limit:g} s): {type(exc).__name__}"
                result.update(error=msg, status=504)
                self._send_json(504, f"alems proxy: {msg}", "upstream_timeout")
                return
            except (OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                msg = f"upstream {up.url} unreachable: {type(exc).__name__}: {reason}"
                result.update(error=msg, status=502)
                self._send_json(502, f"alems proxy: {msg}", "upstream_unreachable")
                return
            result["status"] = resp.status
            ctype = resp.getheader("Content-Type", "")
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            try:
                if "text/event-stream" in ctype:
                    self._relay_stream(resp, result)
                else:
                    self._relay_body(resp, result)
            except TimeoutError:
                result["error"] = (
                    f"upstream {up.url} timed out mid-response ({p.read_timeout_s:g} s between reads)"
                )
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError) as exc:
                result["error"] = f"connection lost mid-response: {type(exc).__name__}"
                self.close_connection = True
            except (OSError, http.client.HTTPException) as exc:
                result["error"] = f"upstream {up.url} broke off the response: {type(exc).__name__}"
                self.close_connection = True
        finally:
            conn.close()

    def _relay_body(self, resp: http.client.HTTPResponse, result: dict[str, Any]) -> None:
        data = resp.read()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if resp.status >= 400:
            result["error"] = f"upstream HTTP {resp.status}: {error_text(data)}"
            return
        try:
            obj = json.loads(data)
        except ValueError:
            return
        result["tokens_in"], result["tokens_out"] = usage_tokens(obj)

    def _relay_stream(self, resp: http.client.HTTPResponse, result: dict[str, Any]) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sse = SseUsage(time.monotonic)
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            sse.feed(chunk)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        sse.close()
        result["tokens_in"], result["tokens_out"] = sse.tokens_in, sse.tokens_out
        if sse.first_content_t is not None:
            result["prefill_s"] = sse.first_content_t - self._t_request
        if sse.tokens_out is None and sse.content_chunks:
            # the server sent no usage (llama-cpp-python's ignores include_usage): count the chunks
            result["tokens_out"] = sse.content_chunks
            result["tokens_estimated"] = True
        if resp.status >= 400:
            result["error"] = f"upstream HTTP {resp.status}"
        elif sse.error:
            result["error"] = f"upstream stream error: {sse.error[:MAX_ERROR_CHARS]}"
