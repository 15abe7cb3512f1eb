"""The ``openai`` backend: against a real llama-cpp-python server on loopback (smollm2-135m),
and against tiny local servers that are down, silent, trickling, failing or streaming.
Every failure must be typed and arrive within a bounded time."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alems.errors import ConfigError
from alems.llm.base import Backend, LLMHTTPError, LLMTimeout, LLMUnavailable
from alems.llm.config import LLMConfig
from alems.llm.factory import make_backend
from alems.llm.openai_compat import OpenAIBackend
from alems.llm.runtime import crash_diagnosis

ROOT = Path(__file__).resolve().parents[1]
SMOL = ROOT / "resources" / "models" / "smollm2-135m.gguf"
USER = [{"role": "user", "content": "What is 17+25? Answer with a number."}]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- real server
@pytest.fixture(scope="module")
def llama_server(tmp_path_factory) -> Iterator[str]:
    if not SMOL.is_file():
        pytest.skip(f"{SMOL} is absent: run `alems models fetch smollm2-135m` (make test does)")
    pytest.importorskip(
        "llama_cpp.server", reason="llama-cpp-python[server] is not installed: run `make llama`"
    )
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(SMOL),
        "--model_alias",
        "smollm2-135m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "512",
        "--n_threads",
        "2",
        "--seed",
        "0",
        "--verbose",
        "False",
    ]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                why = (
                    crash_diagnosis(-proc.returncode)
                    if proc.returncode < 0
                    else f"exited with {proc.returncode}"
                )
                pytest.fail(f"llama_cpp.server: {why}\n{log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                import urllib.request

                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready within 120 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_real_server_completion_reports_server_usage(llama_server: str) -> None:
    b = make_backend(
        LLMConfig(
            backend="openai",
            base_url=llama_server,
            model="smollm2-135m",
            response_format="json_object",
            timeout_s=60,
            retries=0,
        )
    )
    assert isinstance(b, Backend)
    c = b.complete(USER, max_tokens=8)
    assert c.tokens_in > 10 and c.tokens_out == 8 and c.finish_reason == "length"
    assert c.text.strip() and c.t_end > c.t_start and c.ttft_s is None
    # the same request is deterministic (temperature 0, fixed seed)
    assert b.complete(USER, max_tokens=8).text == c.text
    prov = b.provenance()
    assert prov["server_url"] == llama_server and prov["server_local"] is True
    assert prov["client_side_only"] is False


@pytest.mark.slow
def test_real_server_json_schema_constrains_output(llama_server: str) -> None:
    b = OpenAIBackend(base_url=llama_server, model="smollm2-135m", response_format="json_object", retries=0)
    c = b.complete(USER, max_tokens=48, json_schema=SCHEMA)
    assert isinstance(json.loads(c.text)["answer"], int)


@pytest.mark.slow
def test_real_server_errors_are_typed(llama_server: str) -> None:
    # llama-cpp-python's server rejects the OpenAI json_schema format (HTTP 500): not retried forever
    b = OpenAIBackend(base_url=llama_server, model="smollm2-135m", retries=1, backoff_s=0.01)
    with pytest.raises(LLMHTTPError) as ei:
        b.complete(USER, max_tokens=4, json_schema=SCHEMA)
    assert (
        ei.value.status == 500
        and "json_object" in ei.value.message
        and "after 2 of 2 attempts" in ei.value.message
    )
    # a wrong path is a 404, not retried
    t0 = time.monotonic()
    b = OpenAIBackend(base_url=llama_server.replace("/v1", "/nope"), model="m", retries=3, backoff_s=5)
    with pytest.raises(LLMHTTPError, match="HTTP 404") as ei:
        b.complete(USER, max_tokens=4)
    assert time.monotonic() - t0 < 5 and "llm.base_url" in (ei.value.fix or "")
    # streaming without usage in the stream is refused, never estimated
    b = OpenAIBackend(base_url=llama_server, model="smollm2-135m", stream=True, retries=0)
    with pytest.raises(LLMHTTPError, match="no token usage"):
        b.complete(USER, max_tokens=4)


# --------------------------------------------------------------------------- down, silent, trickling
def test_server_down_is_unavailable_after_bounded_retries() -> None:
    port = _free_port()  # bound then closed: nothing listens
    waits: list[float] = []
    b = OpenAIBackend(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", retries=2, backoff_s=0.05, sleep=waits.append
    )
    t0 = time.monotonic()
    with pytest.raises(LLMUnavailable) as ei:
        b.complete(USER, max_tokens=4)
    assert time.monotonic() - t0 < 5
    assert waits == [0.05, 0.1]
    assert f"127.0.0.1:{port}" in ei.value.message and "after 3 of 3 attempts" in ei.value.message
    assert "llm.base_url" in (ei.value.fix or "")


@pytest.fixture()
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def loop() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1], held
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()


def test_silent_server_times_out_within_the_deadline(silent_server) -> None:
    port, held = silent_server
    b = OpenAIBackend(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=0.4, retries=1, backoff_s=0.05
    )
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout) as ei:
        b.complete(USER, max_tokens=4)
    wall = time.monotonic() - t0
    assert 0.8 <= wall < 4, wall  # 2 x 0.4 s + backoff; generous for a loaded CI
    assert "within 0.4 s" in ei.value.message and "llm.timeout_s" in (ei.value.fix or "")
    assert len(held) == 2  # retried once


class _Handler(BaseHTTPRequestHandler):
    """Scripted HTTP answers: the server's ``plan`` is a list of callables, one per request."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
        )
        self.server.plan.pop(0)(self)

    def send_json(self, status: int, obj) -> None:
        raw = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def _ok(text: str = "42", n_in: int = 11, n_out: int = 2):
    return lambda h: h.send_json(
        200,
        {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        },
    )


@pytest.fixture()
def fake_server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.plan = []
    srv.requests = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_trickling_server_cannot_stretch_the_deadline(fake_server) -> None:
    def trickle(h) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        try:
            for _ in range(100):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    fake_server.plan = [trickle]
    b = OpenAIBackend(base_url=fake_server.base, model="m", timeout_s=0.5, retries=0)
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout):
        b.complete(USER, max_tokens=4)
    assert time.monotonic() - t0 < 3  # deadline 0.5 s; the server would trickle for 10 s


def test_retry_after_503_then_success_with_request_shape(fake_server, monkeypatch) -> None:
    fake_server.plan = [lambda h: h.send_json(503, {"error": "loading"}), _ok('{"answer": 42}', 11, 5)]
    monkeypatch.setenv("ALEMS_TEST_KEY", "sekrit")
    waits: list[float] = []
    b = OpenAIBackend(
        base_url=fake_server.base,
        model="qwen",
        api_key_env="ALEMS_TEST_KEY",
        retries=2,
        backoff_s=0.2,
        sleep=waits.append,
    )
    c = b.complete(USER, max_tokens=7, seed=3, stop=["\n"], json_schema=SCHEMA)
    assert (c.text, c.tokens_in, c.tokens_out, c.finish_reason) == ('{"answer": 42}', 11, 5, "stop")
    assert waits == [0.2]
    req = fake_server.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sekrit"
    body = req["body"]
    assert (body["model"], body["max_tokens"], body["temperature"], body["seed"], body["stop"]) == (
        "qwen",
        7,
        0.0,
        3,
        ["\n"],
    )
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "sekrit" not in json.dumps(b.provenance())


def test_client_errors_and_bad_bodies_are_not_retried(fake_server) -> None:
    fake_server.plan = [lambda h: h.send_json(401, {"error": "bad key"})]
    b = OpenAIBackend(base_url=fake_server.base, model="m", retries=3, backoff_s=10)
    with pytest.raises(LLMHTTPError, match="HTTP 401") as ei:
        b.complete(USER, max_tokens=4)
    assert ei.value.status == 401 and "api_key_env" in (ei.value.fix or "")
    fake_server.plan = [lambda h: h.send_json(200, {"choices": [{"message": {"content": "hi"}}]})]
    with pytest.raises(LLMHTTPError, match="no token usage"):
        b.complete(USER, max_tokens=4)
    fake_server.plan = [lambda h: h.send_json(200, {"unexpected": True})]
    with pytest.raises(LLMHTTPError, match="not a chat completion"):
        b.complete(USER, max_tokens=4)
    assert len(fake_server.requests) == 3


def test_streaming_reports_ttft_and_server_usage(fake_server) -> None:
    def sse(h) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        events = [
            {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
            {"choices": [{"index": 0, "delta": {"content": "4"}}]},
            {"choices": [{"index": 0, "delta": {"content": "2"}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}},
        ]
        time.sleep(0.15)
        for e in events:
            h.wfile.write(b"data: " + json.dumps(e).encode() + b"\n\n")
            h.wfile.flush()
        h.wfile.write(b"data: [DONE]\n\n")
        h.close_connection = True

    fake_server.plan = [sse]
    b = OpenAIBackend(base_url=fake_server.base, model="m", stream=True, retries=0)
    c = b.complete(USER, max_tokens=4)
    assert (c.text, c.tokens_in, c.tokens_out, c.finish_reason) == ("42", 9, 2, "stop")
    assert c.ttft_s is not None and 0.1 < c.ttft_s <= c.t_end - c.t_start
    assert fake_server.requests[-1]["body"]["stream_options"] == {"include_usage": True}


def test_config_errors_and_remote_provenance(monkeypatch) -> None:
    monkeypatch.delenv("ALEMS_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="ALEMS_NO_SUCH_KEY") as ei:
        OpenAIBackend(base_url="http://127.0.0.1:1/v1", model="m", api_key_env="ALEMS_NO_SUCH_KEY")
    assert "export ALEMS_NO_SUCH_KEY" in (ei.value.fix or "")
    with pytest.raises(ConfigError, match="not an http"):
        OpenAIBackend(base_url="127.0.0.1:8080", model="m")
    prov = OpenAIBackend(base_url="http://10.20.30.40:8000/v1", model="m").provenance()
    assert prov["client_side_only"] is True and prov["server_local"] is False
    assert "client only" in prov["energy_scope"]
    assert (
        OpenAIBackend(base_url="http://localhost:8000/v1", model="m").provenance()["client_side_only"]
        is False
    )
