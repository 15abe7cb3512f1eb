"""Overhead of the ``llamacpp`` backend over bare llama-cpp-python, and the default model's memory.

Generates the same 128 tokens (same prompt, greedy, same seed, empty KV cache) with
``Llama.create_chat_completion`` and with ``LlamaCppBackend.complete`` on one loaded model,
in interleaved pairs whose order alternates, so drift on a shared machine hits both alike.

Prints: tokens/s of each (end to end: prompt + 128 generated tokens), the throughput ratio
backend/bare (median of the per-pair ratios; target >= 0.97), and the peak RSS of this
process with the default model loaded (target <= 1 GiB). Writes benchmarks/out/llm_overhead.json.

    .venv/bin/python benchmarks/llm_overhead.py [--model NAME] [--threads 2] [--tokens 128] [--pairs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from alems.errors import AlemsError
from alems.io import atomic_write_json
from alems.llm import LLMConfig, make_backend

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Write a Python module implementing a binary search tree with insert, delete, "
        "search and in-order traversal. Give every method a docstring.",
    },
]
OUT = Path(__file__).resolve().parent / "out" / "llm_overhead.json"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=LLMConfig().model)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)

    rss_before = peak_rss_mib()
    try:
        backend = make_backend(LLMConfig(model=args.model, n_ctx=1024), threads=args.threads)
    except AlemsError as exc:
        print(f"llm_overhead: {exc}", file=sys.stderr)
        return 2
    llm = backend.llama
    n = args.tokens
    sampling = dict(temperature=0.0, seed=0, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0)

    def bare() -> tuple[float, int, int, str, float]:
        llm.reset()  # the backend starts every call from an empty KV cache too
        t0, c0 = time.perf_counter(), time.process_time()
        r = llm.create_chat_completion(messages=PROMPT, max_tokens=n, **sampling)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        u = r["usage"]
        return dt, u["prompt_tokens"], u["completion_tokens"], r["choices"][0]["message"]["content"], dc

    def ours() -> tuple[float, int, int, str, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        c = backend.complete(PROMPT, max_tokens=n, temperature=0.0, seed=0)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        return dt, c.tokens_in, c.tokens_out, c.text, dc

    bare(), ours()  # warm-up: first decode allocates buffers and repacks weights
    rows = []
    for i in range(args.pairs):
        order = (("bare", bare), ("backend", ours)) if i % 2 == 0 else (("backend", ours), ("bare", bare))
        res = {name: fn() for name, fn in order}
        rows.append(res)
        b, o = res["bare"], res["backend"]
        print(
            f"pair {i + 1}: bare {b[2] / b[0]:6.2f} tok/s   backend {o[2] / o[0]:6.2f} tok/s   "
            f"ratio {(o[2] / o[0]) / (b[2] / b[0]):.3f}   per CPU-s {(o[2] / o[4]) / (b[2] / b[4]):.3f}   "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )

    for r in rows:
        for name, (_dt, _tin, tout, _text, _cpu) in r.items():
            if tout != n:
                print(f"warning: {name} generated {tout} tokens, not {n}", file=sys.stderr)
    same_text = all(r["bare"][3] == r["backend"][3] for r in rows)
    same_counts = all(r["bare"][1:3] == r["backend"][1:3] for r in rows)
    tps_bare = [r["bare"][2] / r["bare"][0] for r in rows]
    tps_ours = [r["backend"][2] / r["backend"][0] for r in rows]
    ratios = [o / b for o, b in zip(tps_ours, tps_bare, strict=True)]
    ratio = statistics.median(ratios)
    # tokens per CPU-second (all threads of this process): less sensitive to other load on the host
    cpu_ratios = [(r["backend"][2] / r["backend"][4]) / (r["bare"][2] / r["bare"][4]) for r in rows]
    cpu_ratio = statistics.median(cpu_ratios)
    load = os.getloadavg()
    peak = peak_rss_mib()
    ok_ratio, ok_rss = ratio >= 0.97, peak <= 1024

    prompt_tokens = rows[0]["backend"][1]
    prov = backend.provenance()
    print(
        f"\nmodel {args.model} (sha256 {prov['model_sha256'][:12]}...), {args.threads} threads, "
        f"prompt {prompt_tokens} tokens, {n} generated tokens, {args.pairs} interleaved pairs"
    )
    print(f"bare llama-cpp-python : {statistics.median(tps_bare):6.2f} tok/s (median, end to end)")
    print(f"alems llamacpp backend: {statistics.median(tps_ours):6.2f} tok/s (median, end to end)")
    print(
        f"throughput ratio backend/bare: {ratio:.3f} (median of pairs; min {min(ratios):.3f}, "
        f"max {max(ratios):.3f}) target >= 0.97: {'PASS' if ok_ratio else 'MISS'}"
    )
    print(
        f"throughput ratio per CPU-second: {cpu_ratio:.3f} (median of pairs; min {min(cpu_ratios):.3f}, "
        f"max {max(cpu_ratios):.3f})"
    )
    print(
        f"same text: {same_text}; same token counts: {same_counts}; host load average {load[0]:.2f} (1 min)"
    )
    print(
        f"peak RSS with the model loaded: {peak:.0f} MiB (before load {rss_before:.0f} MiB) "
        f"target <= 1024 MiB: {'PASS' if ok_rss else 'MISS'}"
    )

    atomic_write_json(
        OUT,
        {
            "model": args.model,
            "model_sha256": prov["model_sha256"],
            "threads": args.threads,
            "tokens": n,
            "pairs": args.pairs,
            "prompt_tokens": prompt_tokens,
            "tok_s_bare": tps_bare,
            "tok_s_backend": tps_ours,
            "ratio_median": ratio,
            "ratios": ratios,
            "cpu_ratio_median": cpu_ratio,
            "cpu_ratios": cpu_ratios,
            "loadavg": load,
            "same_text": same_text,
            "same_token_counts": same_counts,
            "peak_rss_mib": peak,
            "llama_cpp": prov["llama_cpp"],
        },
    )
    backend.close()
    return 1 if args.strict and not (ok_ratio and ok_rss) else 0


if __name__ == "__main__":
    raise SystemExit(main())
