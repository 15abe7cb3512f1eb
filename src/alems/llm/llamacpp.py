"""The ``llamacpp`` backend: llama-cpp-python in process, one model load per backend object.

The caller keeps the :class:`LlamaCppBackend` it made (one per job) and calls
``complete`` on it as often as it likes; nothing is cached at module level.

Each call:

- renders the messages with the chat template stored in the GGUF metadata
  (``tokenizer.chat_template``), exactly as llama-cpp-python's own chat handler does;
- tokenizes the prompt with the model's tokenizer: ``tokens_in`` is that count;
- decodes token by token through ``Llama.generate`` (greedy at temperature 0, seeded),
  stopping at an end-of-generation token, a stop string or ``max_tokens``:
  ``tokens_out`` is the number of tokens generated (the end token is not counted,
  as in llama-cpp-python's ``usage``); ``ttft_s`` is the time to the first token;
- reuses the KV cache of the longest prompt prefix it shares with the previous call when
  ``prompt_cache`` is on (the default, as llama.cpp's server does with ``cache_prompt``):
  the agentic mode's growing conversation then evaluates only its new tokens instead of
  re-reading 500-650 tokens per call. Cached entries were computed in other batches (a
  previous prompt, or token by token while generating), and float rounding depends on the
  batch, so a greedy output may differ from the one a fresh cache would give: a call's
  output depends on the calls before it in this process. That history is itself fixed
  by the study (goal order, mode order, seeds), so a rerun of a job reproduces its
  outputs (tests/test_llm_llamacpp.py checks repeated runs); both modes get the same
  treatment. ``prompt_cache: false`` starts every call from an empty cache, making each
  output a function of its messages alone, at the cost of re-reading every prompt;
- optionally constrains the output with a grammar compiled from a JSON schema
  (used for tool-call steps).

Example::

    from alems.llm import LLMConfig, make_backend
    llm = make_backend(LLMConfig(model="smollm2-135m"), threads=2)
    c = llm.complete([{"role": "user", "content": "Say hi."}], max_tokens=16)
    print(c.text, c.tokens_in, c.tokens_out, c.ttft_s)
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from alems.errors import ModelError
from alems.io import canonical_json
from alems.llm.base import BackendNotInstalled, Generation, LLMCallError, Message, Request, TimedBackend
from alems.llm.build import read_build_record
from alems.llm.fetch import ModelFile

if TYPE_CHECKING:  # llama-cpp-python is optional and loaded lazily
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

LLAMA_IMPORT_FIX = "run `make llama` (builds llama-cpp-python once and caches the wheel)"


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise BackendNotInstalled(f"llama-cpp-python is not installed ({exc})", fix=LLAMA_IMPORT_FIX) from exc
    return llama_cpp


def llama_build_info() -> dict[str, Any]:
    """Version, build flags (``.venv/llama_build.json`` written by the Makefile) and the
    CPU features llama.cpp was compiled with; empty values when not readable."""
    info: dict[str, Any] = {"version": None, "build": None, "system_info": None}
    try:
        llama_cpp = _import_llama()
    except ModelError:
        return info
    info["version"] = getattr(llama_cpp, "__version__", None)
    info["build"] = read_build_record()
    with contextlib.suppress(Exception):
        info["system_info"] = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    return info


@dataclass
class _Decoded:
    """The bytes a call decoded so far, its token count, time to first token, finish reason
    and where a stop string cut it."""

    data: bytearray = field(default_factory=bytearray)
    n_out: int = 0
    ttft: float | None = None
    finish: str = "length"
    cut: int | None = None

    def text(self) -> str:
        kept = self.data[: self.cut] if self.cut is not None else self.data
        return bytes(kept).decode("utf-8", errors="ignore")


class _StopScan:
    """Finds the first stop string in the decoded bytes, looking only where the newest token
    could have completed one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s.encode("utf-8") for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)

    def find(self, data: bytearray, before: int) -> int | None:
        """The earliest start of a stop string ending after byte ``before``, or None."""
        if not self.stops:
            return None
        start = max(0, before - self.longest + 1)
        hits = [i for s in self.stops if (i := data.find(s, start)) >= 0]
        return min(hits) if hits else None


class LlamaCppBackend(TimedBackend):
    """An embedded llama.cpp model. Construct once per process/job and keep it."""

    name = "llamacpp"

    def __init__(
        self,
        model: ModelFile,
        *,
        threads: int,
        n_ctx: int = 4096,
        n_batch: int = 512,
        seed: int = 0,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        prompt_cache: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        llama_cpp = _import_llama()
        self.model = model.name
        self.model_file = model
        self.threads = int(threads)
        self.n_ctx = n_ctx
        self._seed = seed
        self._sampling = {"top_k": top_k, "top_p": top_p, "min_p": min_p, "repeat_penalty": repeat_penalty}
        self._clock = clock
        self.prompt_cache = prompt_cache
        self._grammars: dict[str, Any] = {}
        self._llama_cpp = llama_cpp
        self._llm = self._load(model, n_ctx=n_ctx, n_batch=n_batch, seed=seed)
        self._formatter = self._chat_formatter(model)
        self._vocab = self._llm._model.vocab  # the one private handle: end-of-generation test

    def _load(self, model: ModelFile, *, n_ctx: int, n_batch: int, seed: int) -> Any:
        """The ``llama_cpp.Llama`` of ``model`` on CPU; a file llama.cpp cannot load is a ModelError."""
        try:
            return self._llama_cpp.Llama(
                model_path=str(model.path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                seed=seed,
                n_gpu_layers=0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {model.path}: {exc}",
                fix=f"check the file (`alems models fetch {model.name}` restores catalog models)",
            ) from exc

    def _chat_formatter(self, model: ModelFile) -> Jinja2ChatFormatter:
        """The chat template of the GGUF metadata as llama-cpp-python's own formatter (its
        sha256 is kept for provenance); a model without one is a ModelError."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(
                f"{model.path} has no chat template in its GGUF metadata (tokenizer.chat_template)",
                fix="use an instruct/chat GGUF that carries its chat template",
            )
        self.chat_template_sha256 = hashlib.sha256(template.encode("utf-8")).hexdigest()
        eos = self._llm.token_eos()
        bos = self._llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(eos),
            bos_token=self._token_text(bos),
            stop_token_ids=[eos],
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", "replace")

    # ------------------------------------------------------------------ public helpers
    def render_prompt(self, messages: list[Message]) -> tuple[str, list[str], bool]:
        """The chat-template rendering: ``(prompt, stop strings, added_special)``."""
        # llama-cpp-python types messages as its request TypedDicts; ours are plain role/content dicts
        r = self._formatter(messages=cast(list[Any], messages))
        stop = r.stop if isinstance(r.stop, list) else ([r.stop] if r.stop else [])
        return r.prompt, [s for s in stop if s], bool(r.added_special)

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The exact prompt tokens a call with ``messages`` feeds the model."""
        prompt, _stop, added_special = self.render_prompt(messages)
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=not added_special, special=True)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (no BOS, special tokens parsed)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (benchmarks compare against it)."""
        return self._llm

    def _grammar(self, schema: dict[str, Any]) -> Any:
        key = canonical_json(schema)
        g = self._grammars.get(key)
        if g is None:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                g = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as exc:
                raise LLMCallError(
                    f"JSON schema could not be turned into a llama.cpp grammar: {exc}",
                    fix="simplify the tool-call schema (objects, strings, numbers, enums)",
                ) from exc
            self._grammars[key] = g
        return g

    # ------------------------------------------------------------------ protocol
    def generate(self, messages: list[Message], request: Request, t_start: float) -> Generation:
        prompt, template_stop, added_special = self.render_prompt(messages)
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=not added_special, special=True)
        n_in = len(tokens)
        room = self.n_ctx - n_in
        if room <= 0:
            raise LLMCallError(
                f"prompt of {n_in} tokens does not fit the context window of {self.n_ctx}",
                fix="raise llm.n_ctx or shorten the prompt",
            )
        stops = _StopScan([*(request.stop or []), *template_stop])
        grammar = self._grammar(request.json_schema) if request.json_schema is not None else None
        self._llm.set_seed(request.seed)
        if not self.prompt_cache:
            self._llm.reset()  # no KV reuse across calls: the output never depends on call history
        self._perf_reset()
        gen = self._llm.generate(
            tokens, temp=request.temperature, grammar=grammar, reset=True, **self._sampling
        )
        try:
            decoded = self._decode(gen, min(request.max_tokens, room), stops, t_start)
        except (RuntimeError, ValueError) as exc:
            raise LLMCallError(f"llama.cpp generation failed: {exc}") from exc
        finally:
            gen.close()
        prefill_s, decode_s = self._perf()
        return Generation(
            decoded.text(), n_in, decoded.n_out, decoded.finish, decoded.ttft, prefill_s, decode_s
        )

    def _perf_reset(self) -> None:
        """Zero llama.cpp's per-context timings, so :meth:`_perf` reads this call's alone."""
        with contextlib.suppress(AttributeError, OSError):
            self._llama_cpp.llama_perf_context_reset(self._llm.ctx)

    def _perf(self) -> tuple[float | None, float | None]:
        """llama.cpp's own timings of the call since the reset: ``(t_p_eval, t_eval)`` in seconds
        (prompt evaluation, token generation); ``(None, None)`` where the library has none."""
        try:
            perf = self._llama_cpp.llama_perf_context(self._llm.ctx)
        except (AttributeError, OSError):
            return None, None
        return float(perf.t_p_eval_ms) / 1000.0, float(perf.t_eval_ms) / 1000.0

    def _decode(self, gen: Iterator[int], limit: int, stops: _StopScan, t_start: float) -> _Decoded:
        """Read tokens from ``gen`` until an end-of-generation token (not counted), a stop
        string (the text is cut before it) or ``limit`` generated tokens."""
        out = _Decoded()
        is_eog = self._llama_cpp.llama_vocab_is_eog
        vocab = self._vocab
        detok = self._llm.detokenize
        for token in gen:
            if out.ttft is None:
                out.ttft = self._clock() - t_start
            if is_eog(vocab, token):
                out.finish = "stop"
                break
            out.n_out += 1
            before = len(out.data)
            out.data += detok([token])
            out.cut = stops.find(out.data, before)
            if out.cut is not None:
                out.finish = "stop"
                break
            if out.n_out >= limit:
                out.finish = "length"
                break
        return out

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "model_sha256": self.model_file.sha256,
            "model_source": self.model_file.source,
            "model_path": str(self.model_file.path),
            "threads": self.threads,
            "n_ctx": self.n_ctx,
            "sampling": dict(self._sampling),
            "prompt_cache": self.prompt_cache,
            "chat_template": "gguf:tokenizer.chat_template",
            "chat_template_sha256": self.chat_template_sha256,
            "server_url": None,
            "client_side_only": False,
            "energy_scope": "in-process: the model runs inside the measured process",
            "llama_cpp": llama_build_info(),
        }

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None
