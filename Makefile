# A-LEMS set-up and entry points. Every target is idempotent: a second run with
# nothing changed does no work beyond a few stat() calls.
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
WHEELS      ?= $(HOME)/.cache/alems/wheels
LLAMA_VER   := 0.3.36
LLAMA_CMAKE := -DLLAVA_BUILD=OFF
MODEL       ?= qwen2.5-coder-0.5b
TEST_MODEL  := smollm2-135m
CORES       ?= 1

.PHONY: setup llama test run bench lint clean-venv

## set-up: virtual environment, the project and its test tools
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

## llama-cpp-python: built once from source (no LLaVA), wheel cached outside the repo
$(VENV)/.llama: $(VENV)/.installed
	mkdir -p $(WHEELS)
	if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_VER)-*.whl >/dev/null 2>&1; then \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip wheel --no-deps "llama-cpp-python==$(LLAMA_VER)" -w $(WHEELS); \
	fi
	$(BIN)/pip install -q --find-links $(WHEELS) "llama-cpp-python[server]==$(LLAMA_VER)"
	printf '{"package": "llama-cpp-python", "version": "%s", "CMAKE_ARGS": "%s", "wheel_cache": "%s"}\n' \
	  "$(LLAMA_VER)" "$(LLAMA_CMAKE)" "$(WHEELS)" > $(VENV)/llama_build.json
	touch $@

llama: $(VENV)/.llama

resources/models/%.gguf: | $(VENV)/.installed
	$(BIN)/alems models fetch $*

test: $(VENV)/.llama resources/models/$(TEST_MODEL).gguf
	$(BIN)/pytest -q

run: $(VENV)/.llama resources/models/$(MODEL).gguf
	$(BIN)/snakemake --cores $(CORES) --profile profiles/default all

bench: $(VENV)/.llama resources/models/$(TEST_MODEL).gguf resources/models/$(MODEL).gguf
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(VENV)/.installed
	$(BIN)/snakemake -n --quiet
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean-venv:
	rm -rf $(VENV)
