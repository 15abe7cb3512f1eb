"""Speed of the portable llama.cpp build against every other cached build that runs here.

``make llama`` builds llama-cpp-python for an instruction-set level (x86-64-v3 by default),
never for the build host's CPU. This benchmark checks what that costs: for each build in
the wheel cache (``~/.cache/alems/wheels/llama_cpp_python-VERSION-FLAGSHASH/``), it unpacks
the wheel's shared libraries and, in a child process per measurement (``LLAMA_CPP_LIB_PATH``
points llama-cpp-python at them), loads the model and measures

- prompt tokens/s: a fixed prompt of a few hundred tokens, empty KV cache (time to the first
  generated token, which is the prompt's evaluation plus one sampling step);
- generation tokens/s: the following tokens, greedy.

Builds are measured in interleaved rounds (build order rotating), and the median per build
is reported, so drift on a shared machine hits all alike. A build that dies here (SIGILL,
SIGSEGV) is reported as such. The printed ratio is the default build's generation rate over
the fastest build that runs on this host (target >= 0.90).

Other builds for comparison: ``make llama-wheel LLAMA_CPU=x86-64-v4`` (AVX-512), or
``LLAMA_CPU=x86-64-v2``; they are cached beside the default and not installed.

    .venv/bin/python benchmarks/llama_builds.py [--model qwen2.5-coder-0.5b] [--threads 2] [--tokens 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from alems.io import atomic_write_json
from alems.llm.runtime import read_build_record

OUT = Path(__file__).resolve().parent / "out" / "llama_builds.json"
CACHE = Path(os.environ.get("ALEMS_WHEELS", Path.home() / ".cache" / "alems" / "wheels"))
PROMPT = (
    "You are a careful assistant. Read the following notes and then answer.\n"
    + " ".join(
        f"Note {i}: the warehouse in district {i} shipped {17 * i + 3} crates of apples, "
        f"{11 * i + 5} crates of pears and {7 * i + 2} crates of plums on day {i}."
        for i in range(1, 13)
    )
    + "\nQuestion: write a short report on the shipments, district by district."
)


def child(model: str, threads: int, tokens: int) -> None:
    """One measurement: load, then time the prompt and the generated tokens; print JSON."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=model,
        n_ctx=2048,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        verbose=False,
    )
    prompt = llm.tokenize(PROMPT.encode())
    t0 = time.perf_counter()
    stamps = []
    for _tok in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) >= tokens:
            break
    first = stamps[0] - t0
    gen = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    print(
        json.dumps(
            {
                "prompt_tokens": len(prompt),
                "prompt_tps": len(prompt) / first,
                "gen_tps": gen,
                "generated": len(stamps),
                "system_info": info,
            }
        )
    )


def unpack(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("llama_cpp/lib/"):
                zf.extract(name, into)
    return into / "llama_cpp" / "lib"


def label(flags: str) -> str:
    words = flags.split()
    if "-DGGML_NATIVE=OFF" not in words:
        return "native"
    if "-DGGML_AVX512=ON" in words:
        return "x86-64-v4 (AVX-512)"
    if "-DGGML_AVX2=ON" in words:
        return "x86-64-v3 (AVX2)"
    if "-DGGML_AVX=OFF" in words:
        return "x86-64-v2 (SSE4.2)"
    return "other"


def measure(lib: Path, model: str, threads: int, tokens: int) -> dict:
    env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(lib)}
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--model-path",
        model,
        "--threads",
        str(threads),
        "--tokens",
        str(tokens),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "hung for 600 s"}
    if proc.returncode < 0:
        return {"error": f"killed by {signal.Signals(-proc.returncode).name}"}
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    model = args.model_path or str(Path("resources/models") / f"{args.model}.gguf")
    if args.child:
        child(model, args.threads, args.tokens)
        return 0
    if not Path(model).is_file():
        print(f"{model} is absent: run `alems models fetch {args.model}`", file=sys.stderr)
        return 1
    builds = sorted(d for d in CACHE.glob("llama_cpp_python-*-*") if (d / ".built").exists())
    if not builds:
        print(f"no cached builds under {CACHE}: run `make llama`", file=sys.stderr)
        return 1
    installed = (read_build_record() or {}).get("flags_hash")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        libs = {}
        for d in builds:
            wheel = next(d.glob("llama_cpp_python-*.whl"))
            flags = (d / "CMAKE_ARGS").read_text().strip() if (d / "CMAKE_ARGS").exists() else ""
            libs[d.name] = unpack(wheel, Path(tmp) / d.name)
            results[d.name] = {
                "flags": flags,
                "label": label(flags),
                "default": d.name.endswith(f"-{installed}"),
                "runs": [],
            }
        names = list(libs)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                if results[name].get("error"):
                    continue
                m = measure(libs[name], model, args.threads, args.tokens)
                if "error" in m:
                    results[name]["error"] = m["error"]
                else:
                    results[name]["runs"].append(m)
    for res in results.values():
        if res["runs"]:
            res["prompt_tps"] = statistics.median(m["prompt_tps"] for m in res["runs"])
            res["gen_tps"] = statistics.median(m["gen_tps"] for m in res["runs"])
    running = [r for r in results.values() if r.get("gen_tps")]
    fastest = max(running, key=lambda r: r["gen_tps"]) if running else None
    print(
        f"model {Path(model).name}, {args.threads} threads, {args.tokens} tokens, {args.rounds} rounds (median)"
    )
    print(f"{'build':<26} {'flags hash':<14} {'prompt tok/s':>13} {'gen tok/s':>10} {'gen ratio':>10}")
    for name, res in results.items():
        tag = " *" if res["default"] else ""
        if "gen_tps" in res and fastest:
            res["gen_ratio_to_fastest"] = res["gen_tps"] / fastest["gen_tps"]
            print(
                f"{res['label'] + tag:<26} {name.rsplit('-', 1)[1]:<14} {res['prompt_tps']:>13.1f} "
                f"{res['gen_tps']:>10.1f} {res['gen_ratio_to_fastest']:>10.3f}"
            )
        else:
            print(
                f"{res['label'] + tag:<26} {name.rsplit('-', 1)[1]:<14} {'does not run here: ' + res.get('error', '?')}"
            )
    default = next((r for r in results.values() if r["default"]), None)
    if default and default.get("gen_ratio_to_fastest") is not None:
        print(
            f"* installed default: generation {default['gen_ratio_to_fastest']:.3f}x the fastest build here "
            f"({fastest['label']}); target >= 0.90"
        )
    atomic_write_json(
        OUT,
        {
            "model": Path(model).name,
            "threads": args.threads,
            "tokens": args.tokens,
            "rounds": args.rounds,
            "builds": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
