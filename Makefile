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

## SLURM: the cluster test on a real one-node cluster with accounting (tests/slurm/cluster.sh,
## tests/test_cluster.py). Installs the Debian packages (root, or sudo) and the executor
## plugin (pyproject's `cluster` extra) on first use; fails, never skips, if the cluster
## cannot start.
CLUSTER_DEBS := slurmctld slurmd slurmdbd slurm-client munge mariadb-server
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: cluster-deps test-cluster

cluster-deps:
	@missing=$$(for p in $(CLUSTER_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.cluster: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[test,cluster]'
	touch $@

test-cluster: cluster-deps $(VENV)/.cluster
	@start=$$(date +%s); \
	$(SUDO) tests/slurm/cluster.sh up || { $(SUDO) tests/slurm/cluster.sh down; exit 1; }; \
	$(BIN)/pytest -q -m cluster tests/test_cluster.py; rc=$$?; \
	$(SUDO) tests/slurm/cluster.sh down; \
	echo "test-cluster: $$(( $$(date +%s) - start )) s (cluster up, tests, down)"; exit $$rc
