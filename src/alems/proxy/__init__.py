"""A recording OpenAI-compatible HTTP proxy: LLM phases from any client, with no code changes.

This package owns ``alems proxy`` and the proxy that ``alems track --proxy-upstream``
starts. It forwards every request to the upstream server (``/v1/chat/completions``,
``/v1/completions`` and ``/v1/models`` are what OpenAI clients use; other paths are
forwarded too, unrecorded) and records one ``llm_start``/``llm_end`` pair per completion
call into a sink (:class:`LlmSink`): an :class:`~alems.session.Attempt` under
``alems track``, or an :class:`EventLogSink` writing ``events.jsonl`` records for
``alems proxy``.

* **Times** are on CLOCK_MONOTONIC, the sampler's clock: :func:`time.monotonic` (which is
  ``clock_gettime(CLOCK_MONOTONIC)`` on Linux) standalone, and the sampler's boundary
  read under ``track``.
* **Tokens** come from the response's ``usage`` (``prompt_tokens``, ``completion_tokens``),
  or, for a stream, from the last server-sent event chunk that carries ``usage``. The
  request is never rewritten (no ``stream_options`` added): a server that sends no usage
  gives a call without token counts.
* **Status and errors:** the upstream HTTP status goes on ``llm_end`` as ``status``; a
  status of 400 or more, an unreachable upstream, a timeout or a broken stream is
  recorded as the call's ``error``, and the client gets a JSON error (502 unreachable,
  504 timeout) with a clean message. Timeouts are bounded: ``connect_timeout_s`` to
  connect, ``read_timeout_s`` between two reads of the response.
* **Secrets:** the client's ``Authorization`` header goes to the upstream unchanged; no
  header is ever logged or recorded, and error text taken from the upstream has the
  client's bearer token and anything shaped like an API key blanked out.
* It listens on loopback (127.0.0.1) by default.

HTTP stack: the standard library's :class:`http.server.ThreadingHTTPServer` and
:mod:`http.client`, one thread per connection. It adds no dependency (no async server is
among A-LEMS's dependencies), an agent makes a handful of concurrent calls at most, and
the sink's boundary read is a blocking call that fits a thread. Streams are relayed
chunk by chunk as the upstream sends them (HTTP/1.1 chunked encoding towards the client),
so a streaming client sees tokens as they are generated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from alems.agents.events import EventLog
from alems.proxy.server import LlmProxy
from alems.proxy.sinks import EventLogSink, LlmSink
from alems.proxy.wire import SseUsage, Upstream, redact, usage_tokens


def serve(
    upstream: str,
    events_path: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    goal_id: str = "proxy",
    rep: int = 0,
    mode: str = "agentic",
    attempt: int = 1,
    connect_timeout_s: float = 10.0,
    read_timeout_s: float = 600.0,
    ready: Callable[[LlmProxy], None] | None = None,
    stop: threading.Event | None = None,
) -> LlmProxy:
    """``alems proxy``: serve until ``stop`` is set (or SIGINT/SIGTERM in the CLI); the
    event log is moved into place at ``events_path`` when the proxy stops."""
    stop = stop or threading.Event()
    with EventLog(events_path) as events:
        sink = EventLogSink(events, goal_id=goal_id, rep=rep, mode=mode, attempt=attempt)
        proxy = LlmProxy(
            upstream,
            sink,
            host=host,
            port=port,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        with proxy:
            if ready is not None:
                ready(proxy)
            while not stop.wait(0.2):
                pass
    return proxy


__all__ = ["EventLogSink", "LlmProxy", "LlmSink", "SseUsage", "Upstream", "redact", "serve", "usage_tokens"]
