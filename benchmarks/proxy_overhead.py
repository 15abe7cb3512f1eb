"""Benchmark: the latency the recording proxy (alems.proxy) adds to an LLM call.

A fake OpenAI-compatible upstream on 127.0.0.1 answers at once (no model), so the
difference is the proxy's own work: accept, parse the JSON body, forward, relay, parse
``usage``, and record an ``llm_start``/``llm_end`` pair. Prints, measured in this run
(median of ``N`` calls on one keep-alive connection each way), the per-call time direct and
through the proxy, for a plain and a streamed chat call, and their ratio. A real local
model takes 0.1-10 s per call, so the added milliseconds are what matters.

Run: ``.venv/bin/python benchmarks/proxy_overhead.py``
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_openai import FakeOpenAI

from alems.agents.events import EventLog
from alems.proxy import EventLogSink, LlmProxy

N = 200


def timed_calls(port: int, stream: bool) -> list[float]:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(N):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - t0)
        if resp.getheader("Connection", "").lower() == "close" or resp.will_close:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()
    return out


def main() -> None:
    up = FakeOpenAI()
    with tempfile.TemporaryDirectory() as d, EventLog(Path(d) / "events.jsonl") as log:
        with LlmProxy(up.url, EventLogSink(log)) as proxy:
            for stream in (False, True):
                direct = statistics.median(timed_calls(up.port, stream))
                proxied = statistics.median(timed_calls(proxy.port, stream))
                kind = "streamed" if stream else "plain"
                print(
                    f"{kind:8} chat call: direct {direct * 1e3:.2f} ms, through the proxy {proxied * 1e3:.2f} ms "
                    f"(+{(proxied - direct) * 1e3:.2f} ms per call, ratio {proxied / direct:.2f})"
                )
        print(f"recorded {proxy.calls} calls, {proxy.errors} errors, {log.count} events")
    up.close()


if __name__ == "__main__":
    main()
