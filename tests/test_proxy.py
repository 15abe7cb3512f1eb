"""The recording proxy (alems.proxy) against a fake OpenAI-compatible upstream on 127.0.0.1.

Covers: non-streaming and streaming chat calls (tokens from ``usage`` and from the final
stream chunk; the stream relayed chunk by chunk, not buffered), ``/v1/completions``,
``/v1/models`` (forwarded, not recorded), the ``Authorization`` header passed through
unchanged and never recorded or logged, an upstream HTTP error, an unreachable upstream
and an upstream that never answers (a recorded LLM error, a clean message, no hang), and
``alems proxy``'s event file.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from fake_openai import COMPLETION_TOKENS, PROMPT_TOKENS, STREAM_PIECES, closed_port, upstream  # noqa: F401 - fixture

from alems.agents.events import EventLog, read_events
from alems.proxy import EventLogSink, LlmProxy, Upstream, redact, serve, usage_tokens

SECRET = "sk-test-SECRET-0123456789"


@pytest.fixture
def recorded(tmp_path: Path):
    """An event log and a sink on it; ``events()`` closes the log and reads it back."""
    log = EventLog(tmp_path / "events.jsonl")
    sink = EventLogSink(log, goal_id="g1", rep=0, mode="agentic", attempt=1)

    def events() -> list[dict]:
        log.close()
        return read_events(tmp_path / "events.jsonl")

    yield sink, events
    log.close()


def post(proxy: LlmProxy, path: str, body: dict, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"},
        )
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def ends(events: list[dict]) -> list[dict]:
    return [e for e in events if e["kind"] == "llm_end"]


def test_non_streaming_chat_records_usage_and_passes_authorization(upstream, recorded, caplog) -> None:
    sink, events = recorded
    caplog.set_level(logging.DEBUG, logger="alems.proxy")
    with LlmProxy(upstream.url, sink) as proxy:
        status, body = post(proxy, "/v1/chat/completions", {"model": "fake-model", "messages": []})
    assert status == 200
    reply = json.loads(body)
    assert reply["choices"][0]["message"]["content"] == "".join(STREAM_PIECES)
    assert upstream.requests[-1]["auth"] == f"Bearer {SECRET}"  # unchanged
    assert upstream.requests[-1]["path"] == "/v1/chat/completions"
    ev = events()
    assert [e["kind"] for e in ev] == ["llm_start", "llm_end"]
    end = ev[1]
    assert (end["tokens_in"], end["tokens_out"], end["status"], end["name"]) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
        200,
        "fake-model",
    )
    assert "error" not in end
    assert ev[0]["t"] <= end["t"]
    assert (end["goal_id"], end["mode"], end["attempt"]) == ("g1", "agentic", 1)
    assert proxy.calls == 1 and proxy.errors == 0
    assert SECRET not in (Path(sink.events.path).read_text() + caplog.text)


def test_streaming_chat_is_relayed_as_it_comes_and_tokens_come_from_final_chunk(upstream, recorded) -> None:
    sink, events = recorded
    upstream.gate = threading.Event()
    with LlmProxy(upstream.url, sink) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps({"model": "fake-model", "messages": [], "stream": True}),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"},
        )
        resp = conn.getresponse()
        assert resp.status == 200
        assert "text/event-stream" in resp.getheader("Content-Type")
        first = resp.readline()  # arrives while the upstream is still holding the rest back
        upstream.gate.set()
        rest = resp.read()
        conn.close()
    assert upstream.gate_opened is True, "the proxy buffered the stream instead of relaying the first chunk"
    lines = [ln for ln in (first + rest).split(b"\n") if ln.startswith(b"data: ")]
    assert lines[-1] == b"data: [DONE]"
    text = "".join(json.loads(ln[6:])["choices"][0]["delta"].get("content", "") for ln in lines[:-1])
    assert text == "".join(STREAM_PIECES)
    (end,) = ends(events())
    assert (end["tokens_in"], end["tokens_out"], end["status"]) == (PROMPT_TOKENS, COMPLETION_TOKENS, 200)
    assert "error" not in end


def test_completions_recorded_models_forwarded_unrecorded(upstream, recorded) -> None:
    sink, events = recorded
    with LlmProxy(upstream.url + "/v1", sink) as proxy:  # a base URL ending in /v1 is not doubled
        status, body = post(proxy, "/v1/completions", {"model": "fake-model", "prompt": "hi"})
        assert status == 200 and json.loads(body)["choices"][0]["text"] == "".join(STREAM_PIECES)
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/v1/models")
        models = json.loads(conn.getresponse().read())
        conn.close()
    assert models["data"][0]["id"] == "fake-model"
    assert [r["path"] for r in upstream.requests] == ["/v1/completions", "/v1/models"]
    ev = events()
    assert [e["kind"] for e in ev] == ["llm_start", "llm_end"]  # only the completion is an LLM phase
    assert ev[1]["tokens_out"] == COMPLETION_TOKENS


def test_upstream_http_error_is_recorded_and_redacted(upstream, recorded) -> None:
    sink, events = recorded
    upstream.status = 503
    with LlmProxy(upstream.url, sink) as proxy:
        status, body = post(proxy, "/v1/chat/completions", {"model": "m", "messages": []})
    assert status == 503 and b"overloaded" in body  # the client sees the upstream's own answer
    (end,) = ends(events())
    assert end["status"] == 503
    assert end["error"].startswith("upstream HTTP 503: model overloaded")
    assert "sk-leaked-abcdef123" not in end["error"]
    assert proxy.errors == 1


def test_unreachable_upstream_is_a_recorded_error_with_a_clean_message(recorded) -> None:
    sink, events = recorded
    port = closed_port()
    t0 = time.monotonic()
    with LlmProxy(f"http://127.0.0.1:{port}", sink, connect_timeout_s=2.0) as proxy:
        status, body = post(proxy, "/v1/chat/completions", {"model": "m", "messages": []})
    assert time.monotonic() - t0 < 8.0
    assert status == 502
    msg = json.loads(body)["error"]["message"]
    assert msg.startswith(
        f"alems proxy: upstream http://127.0.0.1:{port} unreachable: ConnectionRefusedError"
    )
    assert "Traceback" not in msg
    (end,) = ends(events())
    assert end["status"] == 502 and "unreachable" in end["error"]
    assert SECRET not in msg + end["error"]


def test_upstream_that_never_answers_times_out(upstream, recorded) -> None:
    sink, events = recorded
    upstream.hang = True
    t0 = time.monotonic()
    with LlmProxy(upstream.url, sink, read_timeout_s=0.5) as proxy:
        status, body = post(proxy, "/v1/chat/completions", {"model": "m", "messages": []}, timeout=20)
    elapsed = time.monotonic() - t0
    assert status == 504
    assert "timed out" in json.loads(body)["error"]["message"]
    assert elapsed < 10.0  # bounded by read_timeout_s, not by the upstream
    (end,) = ends(events())
    assert end["status"] == 504 and "timed out" in end["error"]


def test_alems_proxy_serve_writes_the_event_file(upstream, tmp_path: Path) -> None:
    stop = threading.Event()
    ready = threading.Event()
    box: dict = {}

    def on_ready(p: LlmProxy) -> None:
        box["proxy"] = p
        ready.set()

    out = tmp_path / "proxy-events.jsonl"
    th = threading.Thread(
        target=serve,
        args=(upstream.url, str(out)),
        kwargs={"ready": on_ready, "stop": stop, "goal_id": "q7", "mode": "linear"},
        daemon=True,
    )
    th.start()
    assert ready.wait(10)
    assert box["proxy"].host == "127.0.0.1"  # loopback by default
    post(box["proxy"], "/v1/chat/completions", {"model": "m", "messages": []})
    post(box["proxy"], "/v1/chat/completions", {"model": "m", "messages": [], "stream": True})
    stop.set()
    th.join(10)
    assert not th.is_alive()
    ev = read_events(out)
    assert [e["kind"] for e in ev] == ["llm_start", "llm_end"] * 2
    assert {(e["goal_id"], e["mode"]) for e in ev} == {("q7", "linear")}
    assert sum(e.get("tokens_out", 0) for e in ev) == 2 * COMPLETION_TOKENS


def test_helpers() -> None:
    assert Upstream.parse("http://h:81/v1").target("/v1/models") == "/v1/models"
    assert Upstream.parse("http://h:81").target("/v1/models") == "/v1/models"
    assert Upstream.parse("https://h/api").target("/v1/x") == "/api/v1/x"
    assert redact("key sk-abc1234567 and Bearer tok-9f8e", ("tok-9f8e",)) == "key *** and Bearer ***"
    assert usage_tokens({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
    assert usage_tokens({"usage": None}) == (None, None)
    from alems.errors import ConfigError

    with pytest.raises(ConfigError, match="not an http"):
        Upstream.parse("ftp://x")


def test_alems_proxy_command_stops_cleanly_on_sigint(upstream, tmp_path: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    from alems.energy.childproc import child_env, terminate

    events = tmp_path / "llm.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "alems", "proxy", "--upstream", upstream.url, "--events", str(events)],
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        line = proc.stderr.readline()  # the first line names the URL (bounded by the pytest timeout)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/v1 -> ", line)
        assert m, line
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps({"model": "m", "messages": []}),
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=20)[1]
    finally:
        terminate(proc)
    assert proc.returncode == 0
    assert "1 LLM call(s) recorded, 0 with an error" in err
    assert SECRET not in err + line
    assert [e["kind"] for e in read_events(events)] == ["llm_start", "llm_end"]
    assert os.path.exists(events) and not (tmp_path / ".llm.jsonl.partial").exists()


def test_alems_proxy_says_a_killed_proxys_partial_events_exist_and_keeps_them(tmp_path: Path) -> None:
    """Finding 7 of issue 25: after ``kill -9`` a proxy's events stay in ``.NAME.partial``. A new
    proxy with the same --events must say so and how to finalize them, never overwrite them."""
    import subprocess
    import sys

    from alems.energy.childproc import child_env

    events = tmp_path / "llm.jsonl"
    partial = tmp_path / ".llm.jsonl.partial"
    old = '{"t": 1.0, "goal_id": "proxy", "rep": 0, "mode": "agentic", "attempt": 1, "kind": "llm_start"}\n'
    partial.write_text(old)
    proc = subprocess.run(
        [sys.executable, "-m", "alems", "proxy", "--upstream", "http://127.0.0.1:9", "--events", str(events)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=30,  # today's proxy starts serving over the file and never returns
    )
    assert proc.returncode == 2, proc.stderr
    assert str(partial) in proc.stderr and "1 event(s)" in proc.stderr
    assert f"mv {partial} {events}" in proc.stderr
    assert partial.read_text() == old and not events.exists()
