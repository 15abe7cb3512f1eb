"""One measurement job: run one ``(family, rep)`` with the meter on, then account for it.

This module owns the composition of the layers for one Snakemake ``run_family`` job
(and for ``alems run``):

1. open the meter and start the :class:`~alems.energy.sampler.Sampler` for the whole job;
2. load the LLM backend (inside the measured span: it is framework overhead, never goal energy);
3. run every goal of the family in both modes, back to back, the order alternating from
   goal to goal, with an :class:`~alems.agents.events.EventLog` whose clock is the
   sampler's boundary read, so every attempt, LLM and tool edge has an exact counter read;
4. stop the sampler and account (:func:`alems.accounting.account`) against the idle baseline;
5. write ``samples.parquet``, ``events.jsonl``, ``goals.csv`` and ``run.json`` atomically,
   ``goals.csv`` and ``run.json`` last. A job killed at any point leaves no complete set
   of outputs, so Snakemake reruns it.

``run.json`` carries what the three contract files do not: the job's wall time, the
share of it inside attempt windows, the framework overhead energy, the meter's domains
and sources, and the provenance hashes.

Also here: the idle-baseline job (:func:`measure_idle_baseline`), the baseline a job on
a given host subtracts (:func:`job_baseline`: its own host's, never another's), the aggregation of
runs into the tables (:func:`aggregate`, refusing to mix runs whose provenance differs),
``alems run`` with the meter on (:func:`run_with_energy`), and the ``scripted`` backend's
oracle policy (:class:`OracleBackend`), which plays both modes from the goals' expected
answers with designed failures so pipeline tests have successes, failures and retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alems.baseline import this_host
from alems.contracts import hashed_config
from alems.errors import AlemsError, ConfigError
from alems.io import atomic_path, atomic_write_json

log = logging.getLogger("alems.study")

#: ``alems run``'s idle baseline when --config gives none: short, so a one-off run starts fast.
RUN_BASELINE = {"settle_s": 1.0, "windows": 3, "window_s": 1.0, "max_retries": 0}


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class RunPaths:
    """Where one job writes. ``partial_events`` is the live event log (never an output)."""

    samples: Path
    events: Path
    goals: Path
    meta: Path

    @classmethod
    def in_dir(cls, out_dir: str | os.PathLike[str]) -> RunPaths:
        d = Path(out_dir)
        return cls(d / "samples.parquet", d / "events.jsonl", d / "goals.csv", d / "run.json")

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> RunPaths:
        return cls(Path(m["samples"]), Path(m["events"]), Path(m["goals"]), Path(m["meta"]))

    @property
    def partial_events(self) -> Path:
        return self.events.with_name(f".{self.events.name}.partial")

    def all(self) -> list[Path]:
        return [self.samples, self.events, self.goals, self.meta]


@dataclass
class JobResult:
    """What one job did, as written to ``run.json``."""

    family: str
    rep: int
    run_id: str
    modes: list[str]
    goals: int
    executions: int
    successes: int
    attempts: int
    wall_s: float
    in_window_s: float
    in_window_share: float
    framework_overhead_j: float
    overhead_s: float
    energy_source: str
    modeled: bool
    domains: list[dict[str, Any]]
    samples: int
    meter: str
    backend: str
    model: str
    threads: int
    host: str = ""
    flags: list[str] = field(default_factory=list)
    hashes: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- helpers
def clean_partials(paths: RunPaths) -> None:
    """Remove what a killed earlier attempt of this job may have left (temporary files)."""
    for d in {p.parent for p in paths.all()}:
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.endswith(".partial")):
                p.unlink(missing_ok=True)


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def window_share(goals: pd.DataFrame, wall_s: float) -> tuple[float, float]:
    """Seconds inside attempt windows (union, so overlaps never count twice) and their share of ``wall_s``."""
    spans = sorted(
        (float(a), float(b))
        for a, b in zip(goals.get("t0", []), goals.get("t1", []), strict=False)
        if pd.notna(a) and pd.notna(b) and b > a
    )
    total = 0.0
    cur: list[float] | None = None
    for a, b in spans:
        if cur is None or a > cur[1]:
            if cur is not None:
                total += cur[1] - cur[0]
            cur = [a, b]
        else:
            cur[1] = max(cur[1], b)
    if cur is not None:
        total += cur[1] - cur[0]
    share = total / wall_s if wall_s > 0 else float("nan")
    return total, share


# --------------------------------------------------------------------------- the oracle backend
def _u01(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from the given parts (platform independent)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") / 2.0**64


def _wrong_value(expected: str) -> str:
    try:
        v = float(expected.replace(",", ""))
    except ValueError:
        return "unknown"
    return str(int(v) + 7) if v == int(v) else f"{v + 7.5:g}"


class OracleBackend:
    """The ``scripted`` backend's oracle policy: it knows every goal's expected answer.

    It plays both modes by the executors' protocol (``alems.agents``): in linear mode it
    answers ``Answer: <expected>``; in agentic mode it returns a valid JSON plan that uses
    the goal's real tools (``sql`` with the goal's query, ``write_file`` with the answer,
    ``calculator`` on the answer), a plain sentence after each tool result, the final
    answer, and a self-check that says NO exactly when its own answer was wrong.

    Designed failures, seeded per ``(seed + call seed, goal_id, mode, attempt)``, where the
    call seed is the ``seed`` the executor passes (``agents.seed + rep``), so every rep
    draws its own failures: with probability
    ``fail_rate`` an attempt's answer is wrong (linear: a failed execution; agentic: the
    self-check rejects it and the executor retries), and with ``fail_rate / 3`` an agentic
    plan is not JSON (a parse failure, retried). So a run has successes, failures and
    retries, and its energy scales with tokens through ``cost_s_per_token`` (CPU time
    burned per token, measured on the process clock so it does not depend on load).
    Tokens are whitespace-separated pieces, like :class:`alems.llm.scripted.ScriptedBackend`.
    """

    name = "scripted"

    def __init__(
        self,
        goals: Sequence[Any],
        *,
        family: Any = None,
        fail_rate: float = 0.25,
        seed: int = 0,
        cost_s_per_token: float = 0.0,
        sleep_s_per_call: float = 0.0,
        model: str = "oracle",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.goals = list(goals)
        self.family = family
        self.fail_rate = float(fail_rate)
        self.seed = int(seed)
        self.cost = float(cost_s_per_token)
        self.sleep_s = float(sleep_s_per_call)
        self.model = model
        self.clock = clock
        self._attempt: dict[tuple[str, str, int], int] = {}
        self._call_seed = 0
        self._wrong: dict[tuple[str, str], bool] = {}
        self.calls = 0

    # -- helpers
    def _goal(self, messages: Sequence[Mapping[str, str]]) -> Any:
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        first = users[0] if users else ""
        found = [g for g in self.goals if g.prompt and g.prompt in first]
        return max(found, key=lambda g: len(g.prompt)) if found else None

    @staticmethod
    def _mode(messages: Sequence[Mapping[str, str]]) -> str:
        system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
        return "agentic" if "plan" in system.lower() else "linear"

    def _new_attempt(self, goal: Any, mode: str) -> tuple[int, bool]:
        key = (goal.goal_id, mode)
        k = self._attempt.get((*key, self._call_seed), 0) + 1
        self._attempt[(*key, self._call_seed)] = k
        wrong = _u01(self.seed + self._call_seed, goal.goal_id, mode, k, "answer") < self.fail_rate
        self._wrong[key] = wrong
        return k, wrong

    def _answer(self, goal: Any, mode: str) -> str:
        wrong = self._wrong.get((goal.goal_id, mode), False)
        value = _wrong_value(goal.expected) if wrong else goal.expected
        return f"The result follows from the task.\nAnswer: {value}"

    def _plan(self, goal: Any, k: int, wrong: bool) -> str:
        if _u01(self.seed + self._call_seed, goal.goal_id, "agentic", k, "plan") < self.fail_rate / 3:
            return "I would first look at the task and then answer it."  # not JSON: a parse failure
        tools = set(getattr(goal, "tools", ()) or ())
        value = _wrong_value(goal.expected) if wrong else goal.expected
        steps: list[dict[str, str]] = []
        if "sql" in tools and getattr(goal, "db_query", None):
            steps.append({"tool": "sql", "input": goal.db_query})
        if "write_file" in tools and getattr(goal, "output_file", None):
            steps.append({"tool": "write_file", "file": goal.output_file, "input": value})
        if not steps and "calculator" in tools and getattr(goal, "answer_kind", "") == "numeric":
            steps.append({"tool": "calculator", "input": value})
        if not steps:
            steps.append({"tool": "llm", "input": "Which facts does the task give?"})
        return json.dumps({"steps": steps})

    def _reply(self, messages: list[dict[str, str]], json_schema: Mapping[str, Any] | None) -> str:
        goal = self._goal(messages)
        if goal is None:
            return "Answer: unknown"
        mode = self._mode(messages)
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        if mode == "linear":
            self._new_attempt(goal, mode)
            return self._answer(goal, mode)
        is_plan = (
            json_schema is not None and "steps" in json.dumps(json_schema)
        ) or "Write the plan now" in last
        if is_plan and len([m for m in messages if m.get("role") == "user"]) == 1:
            k, wrong = self._new_attempt(goal, mode)
            return self._plan(goal, k, wrong)
        if last.startswith("Result of step"):
            head = last.split("\n", 1)[0]
            return "The step returned " + head.split(":", 1)[-1].strip() + "."
        if last.startswith("Step "):
            return "The task gives all the facts needed."
        if last.startswith("Check your final answer"):
            return "NO" if self._wrong.get((goal.goal_id, mode), False) else "YES"
        return self._answer(goal, mode)

    _BLOCK = b"\x5a" * (1 << 16)

    def _burn(self, seconds: float) -> None:
        """Burn ``seconds`` of this process's CPU time, mostly outside the GIL.

        sha256 over a 64 KiB block releases the GIL (as llama.cpp does while it
        computes), so the sampler thread keeps its pace instead of queuing behind a
        pure-Python loop.
        """
        if seconds <= 0:
            return
        start, wall_end = time.process_time(), time.monotonic() + 20 * seconds + 1.0
        while time.process_time() - start < seconds and time.monotonic() < wall_end:
            hashlib.sha256(self._BLOCK).digest()

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        stop: list[str] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Any:
        from alems.llm.base import Completion
        from alems.llm.scripted import count_tokens

        t0 = self.clock()
        self.calls += 1
        self._call_seed = int(seed)
        text = self._reply(messages, json_schema)
        finish = "stop"
        pieces = text.split(" ")
        if count_tokens(text) > max_tokens:
            text, finish = " ".join(pieces[:max_tokens]), "length"
        tokens_in = sum(count_tokens(m.get("content", "")) for m in messages)
        tokens_out = count_tokens(text)
        self._burn(self.cost * (tokens_in + tokens_out))
        if self.sleep_s:  # after the work: a call ends idle, like a server waiting on I/O
            time.sleep(self.sleep_s)
        return Completion(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            t_start=t0,
            t_end=self.clock(),
            finish_reason=finish,
        )


# --------------------------------------------------------------------------- layer adapters
def _meter_for(energy: Mapping[str, Any]) -> Any:
    from alems.energy import open_meter

    kwargs: dict[str, Any] = {
        "powercap_root": energy.get("powercap_root"),
        "calibrate": energy.get("calibrate", True),
    }
    if energy.get("model"):
        kwargs["model_params"] = energy["model"]
    return open_meter(energy.get("meter", "auto"), **kwargs)


def llm_settings(llm: Mapping[str, Any]) -> dict[str, Any]:
    """The ``llm`` config section without the keys only the study reads (the oracle policy)."""
    return {k: v for k, v in llm.items() if k != "oracle"}


def uses_oracle(llm: Mapping[str, Any]) -> bool:
    """``scripted`` with no fixed ``script``: the oracle policy plays the study in process."""
    return llm.get("backend") == "scripted" and not llm.get("script")


def make_backend(
    llm: Mapping[str, Any],
    *,
    threads: int | None,
    goals: Sequence[Any] = (),
    family: Any = None,
    model_path: str | None = None,
) -> Any:
    """The backend a config names. ``scripted`` with no fixed ``script`` is the oracle policy."""
    if uses_oracle(llm):
        return OracleBackend(goals, family=family, **dict(llm.get("oracle") or {}))
    from alems.llm.config import LLMConfig
    from alems.llm.factory import make_backend as _make

    cfg = dict(llm_settings(llm))
    if (
        model_path
        and cfg.get("backend") == "llamacpp"
        and not cfg.get("model_path")
        and (
            Path(model_path).resolve()
            != (Path(cfg.get("models_dir", "resources/models")) / f"{cfg.get('model')}.gguf").resolve()
        )
    ):
        cfg["model_path"] = str(model_path)
    return _make(LLMConfig.from_dict(cfg), threads=threads)


def preflight_study(llm: Mapping[str, Any], *, threads: int | None = None) -> dict[str, Any]:
    """The first step of every measurement job (``baseline``, ``run_family``): the study's
    backend must generate a few tokens, in a child process (:mod:`alems.llm.runtime`), before
    anything is measured. A native crash, a hang, a missing model or an unreachable server
    raises :class:`~alems.errors.LLMRuntimeError` with the diagnosis, so the job's log says
    what happened and what to do. The oracle policy runs in process: nothing to probe."""
    from alems.llm.config import LLMConfig
    from alems.llm.runtime import probe

    if uses_oracle(llm):
        log.info("LLM preflight: the scripted oracle runs in process, nothing to probe")
        return {"backend": "scripted", "status": "skipped"}
    result = probe(LLMConfig.from_dict(llm_settings(llm)), threads=threads)
    log.info("LLM preflight:\n%s", result.render())
    result.raise_for_status()
    return result.to_dict()


# --------------------------------------------------------------------------- the job
def run_family(
    cfg: Mapping[str, Any],
    family: str,
    rep: int,
    paths: RunPaths,
    *,
    idle_power_w: Mapping[str, float],
    run_id: str = "",
    hashes: Mapping[str, Any] | None = None,
    baseline_info: Mapping[str, Any] | None = None,
    threads: int | None = 1,
    model_path: str | None = None,
    backend: Any = None,
    meter: Any = None,
    progress: bool = False,
    workdir: str | os.PathLike[str] | None = None,
    idle_busy_cpu_per_s: float | None = None,
) -> JobResult:
    """Run one ``(family, rep)`` and write its four files. See the module docstring.

    ``idle_busy_cpu_per_s``: busy CPU-seconds per second during the idle baseline
    (:func:`idle_busy_cpu_per_s`), so accounting does not remove a steady background twice.

    ``cfg`` is the validated config (at least ``study``, ``tasks``, ``llm``, ``agents``,
    ``energy``, ``accounting``). ``backend`` and ``meter`` override the configured ones
    (tests). The meter is closed when the job ends.
    """
    from alems.accounting import account
    from alems.agents.config import AgentConfig
    from alems.agents.events import EventLog
    from alems.agents.runner import execute_family
    from alems.energy.sampler import Sampler, write_samples
    from alems.tasks import get_family

    study = cfg["study"]
    modes = list(study["modes"])
    clean_partials(paths)
    agent_cfg = AgentConfig.from_dict(cfg.get("agents") or {})
    fam = get_family(family, cfg)
    goals = fam.generate(int(study["seed"]), int(study["tasks"]))
    if not goals:
        raise ConfigError(f"family {family} produced no goals", "set study.tasks >= 1")
    work = Path(workdir) if workdir is not None else paths.goals.parent / "work"
    shutil.rmtree(work, ignore_errors=True)

    meter = meter if meter is not None else _meter_for(cfg["energy"])
    interval_s = float(cfg["energy"].get("interval_ms", 10)) / 1000.0
    acct_cfg = cfg.get("accounting", {})
    sampler = Sampler(
        meter,
        interval_s=interval_s,
        pid=os.getpid(),
        gpu_study_names=tuple(acct_cfg.get("gpu_study_processes") or ()),
    )
    sampler.start()
    t_start = sampler.boundary_t()
    try:
        if backend is None:
            backend = make_backend(
                cfg["llm"], threads=threads, goals=goals, family=fam, model_path=model_path
            )
        with EventLog(paths.events, clock=sampler.boundary_t) as events_log:
            outcomes = execute_family(
                fam,
                goals,
                modes=modes,
                rep=rep,
                backend=backend,
                events=events_log,
                cfg=agent_cfg,
                workdir=work,
                progress=progress,
            )
        t_end = sampler.boundary_t()
    finally:
        sampler.stop()
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    samples = sampler.frame()
    domains = list(meter.domains())
    meter.close()

    events = read_events(paths.events)
    result = account(
        samples,
        domains,
        events,
        outcomes,
        idle_power_w,
        attribution=acct_cfg.get("attribution", "cpu_share"),
        min_coverage=float(acct_cfg.get("min_coverage", 0.8)),
        run_id=run_id,
        idle_busy_cpu_per_s=idle_busy_cpu_per_s,
    )
    goals_df = result.goals
    wall_s = float(t_end - t_start)
    in_s, share = window_share(goals_df, wall_s)
    final = goals_df[goals_df["final_attempt"].astype(bool)] if len(goals_df) else goals_df
    job = JobResult(
        family=family,
        rep=int(rep),
        run_id=run_id,
        modes=modes,
        goals=len(goals),
        executions=len(final),
        successes=int(final["success"].astype(bool).sum()) if len(final) else 0,
        attempts=len(goals_df),
        wall_s=wall_s,
        in_window_s=in_s,
        in_window_share=share,
        framework_overhead_j=float(result.framework_overhead_j),
        overhead_s=float(result.overhead_s),
        energy_source=result.energy_source,
        modeled=bool(result.contains_modeled),
        domains=[{"key": d.key, "kind": d.kind, "source": d.source, "meter": d.meter} for d in domains],
        samples=len(samples),
        meter=str(getattr(meter, "name", type(meter).__name__)),
        backend=str(getattr(backend, "name", type(backend).__name__)),
        model=str(getattr(backend, "model", "")),
        threads=int(threads or 0),
        host=this_host(),
        flags=list(result.flags)
        + ([f"gpu_foreign_pids:{len(sampler.gpu_foreign_pids)}"] if sampler.gpu_foreign_pids else []),
        hashes=dict(hashes or {}),
        baseline=dict(baseline_info or {}),
    )

    # Outputs, goals.csv and run.json last: until they exist the job is incomplete.
    with atomic_path(paths.samples) as tmp:
        write_samples(samples, domains, tmp)
    with atomic_path(paths.goals) as tmp:
        goals_df.to_csv(tmp, index=False)
    atomic_write_json(paths.meta, job.to_dict())
    log.info(
        "%s rep%d: %d executions, %d successes, %.1f s wall, %.1f%% inside attempt windows",
        family,
        rep,
        job.executions,
        job.successes,
        wall_s,
        100 * share,
    )
    return job


def idle_busy_cpu_per_s(base: Any) -> float | None:
    """Busy CPU-seconds per second during an idle baseline: its ``host_util`` x this host's CPUs.

    ``None`` where the baseline did not measure host load (accounting then takes 0).
    """
    util = getattr(base, "host_util", None)
    if util is None:
        return None
    try:
        from alems.energy.procstat import ProcStat

        return float(util) * ProcStat().n_cpus
    except AlemsError:
        return None


def measure_idle_baseline(
    energy: Mapping[str, Any],
    baseline: Mapping[str, Any],
    out_path: str | os.PathLike[str],
    *,
    hashes_path: str | os.PathLike[str],
    cache_path: str | os.PathLike[str] | None = None,
    meter: Any = None,
) -> Any:
    """The ``baseline`` job: reuse this host's cached idle baseline when allowed, else measure it.

    The cache lives outside ``results/`` (Snakemake deletes an output before its job
    runs), so a config change that reruns this rule costs seconds, not the protocol.
    By default it is this host's file under :data:`BASELINE_CACHE`
    (:func:`alems.baseline.host_cache_path`), the one ``run_family`` jobs on this host
    reuse.
    """
    from alems.baseline import BaselineConfig, host_cache_path, write_baseline
    from alems.provenance import load_hashes

    hw = host_hw_hash() or load_hashes(hashes_path).hw_hash
    host = this_host()
    path = cache_path if cache_path is not None else host_cache_path(BASELINE_CACHE, host, hw)
    meter = meter if meter is not None else _meter_for(energy)
    try:
        res = _obtain_logged(meter, BaselineConfig.from_dict(baseline), path, hw_hash=hw, host=host)
    finally:
        meter.close()
    write_baseline(out_path, res.baseline)
    return res.baseline


#: Where each host's idle baseline is cached (outside ``results/``, shared by the nodes of a cluster).
BASELINE_CACHE = "resources/baseline"


def _obtain_logged(meter: Any, config: Any, cache_path: str | os.PathLike[str], **kw: Any) -> Any:
    """:func:`alems.baseline.obtain_baseline`, its cache warnings sent to the log."""
    import warnings

    from alems.baseline import obtain_baseline

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = obtain_baseline(meter, config, cache_path, **kw)
    for w in caught:
        log.warning("%s", w.message)
    log.info(
        "baseline %s (%s) of host %s: %s",
        res.baseline.baseline_id,
        res.baseline.status,
        res.baseline.host,
        res.reason,
    )
    return res


def job_baseline(
    reference: Any,
    energy: Mapping[str, Any],
    *,
    host: str,
    hw_hash: str | None,
    cache_root: str | os.PathLike[str] = BASELINE_CACHE,
    meter: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The idle baseline a measurement job on ``host`` subtracts, and its record for ``run.json``.

    The reference baseline (``results/baseline/idle.json``) when it was measured on this
    host with this ``hw_hash``: on one machine, always, at no cost. Otherwise (a cluster
    node other than the one the ``baseline`` rule ran on) this host's own baseline with
    the reference's protocol, reused from its cache (:func:`alems.baseline.host_cache_path`)
    when allowed, else measured now, before the job's meter starts. ``meter`` is used for
    that measurement and left open.
    """
    from alems.baseline import host_cache_path

    if reference.host == host and (hw_hash is None or reference.hw_hash == hw_hash):
        base, origin, path = reference, "reference", None
    else:
        path = host_cache_path(cache_root, host, hw_hash)
        log.info(
            "the reference baseline is from host %s (hw_hash %s); this job runs on %s (hw_hash %s)",
            reference.host,
            reference.hw_hash,
            host,
            hw_hash,
        )
        meter = meter if meter is not None else _meter_for(energy)
        res = _obtain_logged(meter, reference.config, path, hw_hash=hw_hash, host=host)
        base, origin = res.baseline, "host cache" if res.reused else "measured"
    info = {
        "baseline_id": base.baseline_id,
        "status": base.status,
        "modeled": base.modeled,
        "host": base.host,
        "hw_hash": base.hw_hash,
        "origin": origin,
        "path": None if path is None else str(path),
        "power_w": base.power_w,
    }
    return base, info


def host_hw_hash() -> str | None:
    """This machine's ``hw_hash`` (None if it cannot be computed)."""
    try:
        from alems.provenance import HostPaths, collect_hardware, short_hash

        return short_hash(collect_hardware(HostPaths())[0])
    except Exception as exc:
        log.warning("could not fingerprint this host: %s", exc)
        return None


def run_family_job(
    cfg: Mapping[str, Any],
    family: str,
    rep: int,
    outputs: Mapping[str, Any],
    *,
    hashes_path: str | os.PathLike[str],
    baseline_path: str | os.PathLike[str],
    threads: int,
    model_path: str | None = None,
) -> JobResult:
    """The Snakemake ``run_family`` job: provenance and this host's baseline (:func:`job_baseline`), then :func:`run_family`."""
    from alems.baseline import load_baseline
    from alems.provenance import load_hashes

    hashes = load_hashes(hashes_path)
    recorded = hashes.to_dict()
    hw = host_hw_hash()
    if hw is not None and hw != hashes.hw_hash:
        # On a cluster this job may land on another machine than the fingerprint: record the
        # host it measured, so the tables see the difference and refuse to mix silently.
        log.warning("this host's hw_hash %s differs from the fingerprint's %s", hw, hashes.hw_hash)
        recorded["hw_hash"] = hw
    meter = _meter_for(cfg["energy"])
    try:
        base, info = job_baseline(
            load_baseline(baseline_path), cfg["energy"], host=this_host(), hw_hash=hw, meter=meter
        )
    except BaseException:
        meter.close()
        raise
    return run_family(
        cfg,
        family,
        rep,
        RunPaths.from_mapping(outputs),
        idle_power_w=base.power_w,
        run_id=hashes.run_id or "",
        hashes=recorded,
        baseline_info=info,
        threads=threads,
        model_path=model_path,
        meter=meter,
        idle_busy_cpu_per_s=idle_busy_cpu_per_s(base),
        workdir=Path("logs") / "run_family" / "work" / f"{family}_rep{rep}",
    )


# --------------------------------------------------------------------------- alems run
def run_with_energy(
    family_name: str,
    *,
    out_dir: str | os.PathLike[str],
    modes: str | Sequence[str] = ("linear", "agentic"),
    tasks: int = 10,
    reps: int = 1,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    llm_overrides: Mapping[str, Any] | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
    threads: int | None = None,
    progress: bool = True,
    meter: str | None = None,
    powercap_root: str | None = None,
) -> Any:
    """``alems run`` with the meter on: :func:`run_family` per rep, plus an idle baseline.

    Writes ``out_dir/rep{R}/{samples.parquet,events.jsonl,goals.csv,run.json}``, the
    combined per-attempt table ``out_dir/attempts.csv`` (the goals.csv contract: energy
    columns included) and ``out_dir/run.json``. The idle baseline is the host's cached
    one (``resources/baseline/idle.json``) when it may be reused, else measured with the
    config's ``baseline`` settings. Returns an :class:`alems.agents.runner.RunSummary`
    whose ``epg`` attribute holds the EpG rows (``alems.metrics``, no bootstrap).
    """
    from types import SimpleNamespace

    from alems.agents.runner import RunSummary, parse_modes, summarise
    from alems.config import deep_merge
    from alems.metrics import MetricsConfig, compute_tables
    from alems.provenance import fingerprint
    from alems.tasks import FAMILIES, family_group, get_family

    base_cfg = {
        k: v
        for k, v in dict(config or {}).items()
        if k in ("llm", "agents", "user_families", "energy", "baseline", "accounting")
    }
    llm = {k: v for k, v in dict(llm_overrides or {}).items() if v is not None}
    agents = {k: v for k, v in dict(agent_overrides or {}).items() if v is not None}  # deep-merged below
    if "script" in llm:
        llm["script"] = list(llm["script"])
    if llm.get("backend", base_cfg.get("llm", {}).get("backend")) == "scripted" and not (
        llm.get("script") or base_cfg.get("llm", {}).get("script") or base_cfg.get("llm", {}).get("oracle")
    ):
        raise ConfigError(
            "llm.backend is scripted but llm.script is empty",
            fix="set llm.script to a list of replies (used in order, cycling), or an llm.oracle section "
            "in --config for the oracle policy",
        )
    get_family(family_name, base_cfg)  # an unknown family fails here, naming the family
    mode_list = list(parse_modes(modes))
    over: dict[str, Any] = {
        "study": {
            "families": [family_name],
            "modes": mode_list,
            "tasks": int(tasks),
            "reps": int(reps),
            "seed": int(seed),
        },
        "llm": {"seed": seed, **llm},
        "agents": {"seed": seed, **agents},
    }
    energy = {k: v for k, v in (("meter", meter), ("powercap_root", powercap_root)) if v is not None}
    if energy:
        over["energy"] = energy
    cfg = validate_config_for_run(deep_merge(base_cfg, over), FAMILIES)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(hashed_config(cfg))
    run_id = fp.hashes.run_id or ""
    # Without a baseline section in --config, a short protocol (about 4 s) and its own host cache.
    baseline = cfg["baseline"] if "baseline" in base_cfg else {**cfg["baseline"], **RUN_BASELINE}
    cache = "resources/baseline/idle.json" if "baseline" in base_cfg else "resources/baseline/idle-run.json"
    base = measure_idle_baseline(
        cfg["energy"], baseline, out / "idle.json", hashes_path=_write_hashes(out, fp), cache_path=cache
    )
    t0 = time.monotonic()
    frames, jobs = [], []
    for rep in range(int(reps)):
        job = run_family(
            cfg,
            family_name,
            rep,
            RunPaths.in_dir(out / f"rep{rep}"),
            idle_power_w=base.power_w,
            run_id=run_id,
            hashes=fp.hashes.to_dict(),
            baseline_info={"baseline_id": base.baseline_id, "status": base.status, "host": base.host},
            threads=threads,
            progress=progress,
            workdir=out / "work" / f"rep{rep}",
            idle_busy_cpu_per_s=idle_busy_cpu_per_s(base),
        )
        jobs.append(job)
        frames.append(pd.read_csv(out / f"rep{rep}" / "goals.csv", keep_default_na=False, na_values=[""]))
    goals = pd.concat(frames, ignore_index=True)
    with atomic_path(out / "attempts.csv") as tmp:
        goals.to_csv(tmp, index=False)
    with atomic_path(out / "events.jsonl") as tmp:  # all reps' events, in order
        tmp.write_text("".join((out / f"rep{r}" / "events.jsonl").read_text() for r in range(int(reps))))
    epg, _ = compute_tables(goals, MetricsConfig(bootstrap=0), {family_name: family_group(family_name, cfg)})
    rows = [SimpleNamespace(**r) for r in goals.to_dict("records")]
    summary = RunSummary(
        family=family_name,
        group=family_group(family_name, cfg),
        out_dir=out,
        wall_s=time.monotonic() - t0,
        cells=summarise(rows, mode_list),
    )
    cells = epg[epg["family"] == family_name]
    summary.epg = cells  # type: ignore[attr-defined]
    info = {
        **summary.to_dict(),
        "run_id": run_id,
        "tasks": int(tasks),
        "reps": int(reps),
        "seed": int(seed),
        "modes": mode_list,
        "agents": cfg["agents"],
        "llm": llm_settings(cfg["llm"]),
        "energy": cfg["energy"],
        "jobs": [j.to_dict() for j in jobs],
        "epg": json.loads(cells.to_json(orient="records")),
        "baseline": base.to_dict(),
    }
    atomic_write_json(out / "run.json", info)
    return summary


def validate_config_for_run(raw: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    from alems.config import validate_config

    return validate_config(raw, known_families=known)


def _write_hashes(out: Path, fp: Any) -> Path:
    path = out / "hashes.json"
    atomic_write_json(path, fp.hashes.to_dict())
    return path


# --------------------------------------------------------------------------- aggregation
@dataclass
class Tables:
    goals: pd.DataFrame
    epg: pd.DataFrame
    ooi: pd.DataFrame
    label: str
    run_id: str
    epg_layers: pd.DataFrame | None = None  # EpG for every energy layer, stacked (energy_layer column)
    ooi_layers: pd.DataFrame | None = None


def _run_label(path: str | os.PathLike[str]) -> str:
    p = Path(path)
    return f"{p.parent.parent.name}/{p.parent.name}"


def aggregate(
    goal_paths: Iterable[str | os.PathLike[str]],
    meta_paths: Iterable[str | os.PathLike[str]],
    *,
    metrics: Mapping[str, Any],
    groups: Mapping[str, str],
    allow_mixed: bool = False,
    current_hashes: Mapping[str, Any] | None = None,
) -> Tables:
    """Concatenate the runs' goals and compute EpG and OOI.

    Every run's hashes (from its ``run.json``) must agree, and agree with
    ``current_hashes`` when given, unless ``allow_mixed``; a mixed aggregate is labelled
    ``mixed`` and its ``run_id`` says so. Rows that include a run measured against an
    unstable idle baseline are flagged ``baseline_unstable`` (``baseline_unknown`` where
    the run's ``run.json`` records no baseline status).

    Each run's baseline must come from the host the run measured (``run.json``: ``host``
    and ``baseline.host``): a run whose baseline is another host's is a
    :class:`~alems.errors.ProvenanceError` (with ``allow_mixed``, its rows are flagged
    ``baseline_foreign_host``); one that records no host is flagged ``baseline_host_unknown``.
    """
    from alems.errors import ProvenanceError
    from alems.metrics import MetricsConfig, compute_layer_tables, compute_tables, flag_families
    from alems.provenance import check_compatible

    goal_paths = [Path(p) for p in goal_paths]
    records: dict[str, Mapping[str, Any]] = {}
    baseline_flags: dict[str, set[str]] = {
        k: set()
        for k in ("baseline_unstable", "baseline_unknown", "baseline_host_unknown", "baseline_foreign_host")
    }
    foreign: list[str] = []
    for mp in meta_paths:
        meta = json.loads(Path(mp).read_text())
        records[_run_label(mp)] = meta.get("hashes") or {}
        family = str(meta.get("family"))
        status = (meta.get("baseline") or {}).get("status")
        if status != "stable":
            baseline_flags["baseline_unknown" if status is None else "baseline_unstable"].add(family)
        host, base_host = meta.get("host"), (meta.get("baseline") or {}).get("host")
        if not host or not base_host:
            baseline_flags["baseline_host_unknown"].add(family)
        elif host != base_host:
            baseline_flags["baseline_foreign_host"].add(family)
            foreign.append(f"{_run_label(mp)} ran on {host} with the idle baseline of {base_host}")
    if foreign and not allow_mixed:
        raise ProvenanceError(
            "idle baseline from another host: " + "; ".join(foreign),
            fix="rerun those run_family jobs (each measures or reuses its own host's baseline), "
            "or set allow_mixed_runs: true to keep them, flagged baseline_foreign_host",
        )
    if current_hashes is not None:
        records["current provenance (results/provenance/hashes.json)"] = current_hashes
    compat = check_compatible(records, allow_mixed=allow_mixed)
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in goal_paths]
    goals = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if compat.mixed:
        goals["run_id"] = compat.run_id
    mcfg = MetricsConfig.from_dict(metrics)
    epg, ooi = compute_tables(goals, mcfg, dict(groups))
    epg_l, ooi_l = compute_layer_tables(goals, mcfg, dict(groups))
    for flag, fams in baseline_flags.items():
        if fams:
            log.warning("runs of %s: %s; their rows are flagged", ", ".join(sorted(fams)), flag)
            epg, ooi = flag_families(epg, ooi, fams, flag, dict(groups))
            epg_l, ooi_l = flag_families(epg_l, ooi_l, fams, flag, dict(groups))
    return Tables(goals, epg, ooi, compat.label, str(compat.run_id or ""), epg_l, ooi_l)


def write_tables(
    tables: Tables,
    goals_path: str | os.PathLike[str],
    epg_path: str | os.PathLike[str],
    ooi_path: str | os.PathLike[str],
    epg_layers_path: str | os.PathLike[str] | None = None,
    ooi_layers_path: str | os.PathLike[str] | None = None,
) -> None:
    """Write the tables; the per-layer ones (``epg_layers.csv``, ``ooi_layers.csv``) where paths are given."""
    from alems.metrics import write_table

    for df, path in (
        (tables.goals, goals_path),
        (tables.epg, epg_path),
        (tables.ooi, ooi_path),
        (tables.epg_layers, epg_layers_path),
        (tables.ooi_layers, ooi_layers_path),
    ):
        if path is not None and df is not None:
            write_table(df, path)


__all__ = [
    "JobResult",
    "OracleBackend",
    "RunPaths",
    "Tables",
    "aggregate",
    "job_baseline",
    "make_backend",
    "measure_idle_baseline",
    "run_family",
    "run_family_job",
    "run_with_energy",
    "window_share",
    "write_tables",
]
