# A-LEMS set-up and entry points. Every target is idempotent: a second run with
# nothing changed does no work beyond a few stat() calls.
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
WHEELS      ?= $(HOME)/.cache/alems/wheels
LLAMA_VER   := 0.3.36
# llama.cpp is built for an instruction-set level, never for the build host's CPU
# (GGML_NATIVE compiles -march=native, which segfaults on Xeons that advertise AMX and
# produces a wheel that is wrong for the next machine). x86-64-v3 = AVX2, FMA, F16C, BMI2:
# every x86-64 server since about 2015, AMD and Intel alike, and as fast here as any
# AVX-512 build (README, "The llama.cpp build"). Override with LLAMA_CPU=x86-64-v2 for
# older CPUs, x86-64-v4 to add AVX-512, or LLAMA_CMAKE=... for anything else.
ARCH        := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_CPU   ?= x86-64-v3
else
LLAMA_CPU   ?= generic
endif
NO_AVX512   := -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF
NO_AMX      := -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
V3          := -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF
ifeq ($(LLAMA_CPU),x86-64-v3)
LLAMA_ISA   := $(V3) $(NO_AVX512) $(NO_AMX)
else ifeq ($(LLAMA_CPU),x86-64-v4)
LLAMA_ISA   := $(V3) -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=OFF $(NO_AMX)
else ifeq ($(LLAMA_CPU),x86-64-v2)
LLAMA_ISA   := -DGGML_SSE42=ON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF -DGGML_AVX_VNNI=OFF $(NO_AVX512) $(NO_AMX)
else ifeq ($(LLAMA_CPU),generic)
LLAMA_ISA   :=
else
$(error LLAMA_CPU=$(LLAMA_CPU) is not one of x86-64-v2, x86-64-v3, x86-64-v4, generic)
endif
LLAMA_CMAKE ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF $(LLAMA_ISA)
# The wheel cache is keyed by version and a hash of the flags: a change of flags builds anew.
LLAMA_HASH  := $(shell printf '%s|%s' '$(LLAMA_VER)' '$(strip $(LLAMA_CMAKE))' | sha256sum | cut -c1-12)
LLAMA_WHEEL_DIR := $(WHEELS)/llama_cpp_python-$(LLAMA_VER)-$(LLAMA_HASH)
LLAMA_SDIST := $(WHEELS)/src/llama_cpp_python-$(LLAMA_VER).tar.gz
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_HASH)
MODEL       ?= qwen2.5-coder-0.5b
TEST_MODEL  := smollm2-135m
CORES       ?= 1

.PHONY: setup llama llama-wheel llama-flags test run bench lint clean-venv mutation

## set-up: virtual environment, the project and its test tools
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint,benchmarks]'
	touch $@

setup: $(VENV)/.installed

## llama-cpp-python: built once per (version, flags) from source, wheel cached outside the repo.
## pip's own cache keys wheels by name and version only, so it is bypassed for this build.
$(LLAMA_SDIST): | $(VENV)/.installed
	mkdir -p $(dir $@)
	$(BIN)/pip download -q --no-deps --no-binary :all: "llama-cpp-python==$(LLAMA_VER)" -d $(dir $@)

$(LLAMA_WHEEL_DIR)/.built: $(LLAMA_SDIST) | $(VENV)/.installed
	rm -rf $(LLAMA_WHEEL_DIR).tmp && mkdir -p $(LLAMA_WHEEL_DIR).tmp
	@echo "building llama-cpp-python $(LLAMA_VER) ($(LLAMA_CPU), flags hash $(LLAMA_HASH)); 4-7 min on 2 cores"
	CMAKE_ARGS="$(LLAMA_CMAKE)" PIP_NO_CACHE_DIR=1 $(BIN)/pip wheel -q --no-cache-dir --no-deps \
	  $(LLAMA_SDIST) -w $(LLAMA_WHEEL_DIR).tmp
	printf '%s\n' '$(strip $(LLAMA_CMAKE))' > $(LLAMA_WHEEL_DIR).tmp/CMAKE_ARGS
	rm -rf $(LLAMA_WHEEL_DIR) && mv $(LLAMA_WHEEL_DIR).tmp $(LLAMA_WHEEL_DIR)
	touch $@

$(LLAMA_STAMP): $(LLAMA_WHEEL_DIR)/.built $(VENV)/.installed
	rm -f $(VENV)/.llama $(VENV)/.llama-*
	$(BIN)/pip install -q --force-reinstall --no-deps $(LLAMA_WHEEL_DIR)/llama_cpp_python-*.whl
	$(BIN)/pip install -q --find-links $(LLAMA_WHEEL_DIR) "llama-cpp-python[server]==$(LLAMA_VER)"
	$(BIN)/python -m alems.llm.runtime record --out $(VENV)/llama_build.json --version $(LLAMA_VER) \
	  --cpu-level $(LLAMA_CPU) --cmake-args '$(strip $(LLAMA_CMAKE))' --flags-hash $(LLAMA_HASH) \
	  --wheel-dir $(LLAMA_WHEEL_DIR)
	touch $@

llama: $(LLAMA_STAMP)

## build (or find) the wheel for these flags without installing it, e.g. to benchmark another level:
##   make llama-wheel LLAMA_CPU=x86-64-v4 && .venv/bin/python benchmarks/llama_builds.py
llama-wheel: $(LLAMA_WHEEL_DIR)/.built

## the flags a build would use, for scripts and tests
llama-flags:
	@echo '$(strip $(LLAMA_CMAKE))'

resources/models/%.gguf: | $(VENV)/.installed
	$(BIN)/alems models fetch $*

test: $(LLAMA_STAMP) resources/models/$(TEST_MODEL).gguf
	$(BIN)/pytest -q

run: $(LLAMA_STAMP) resources/models/$(MODEL).gguf
	$(BIN)/snakemake --cores $(CORES) --profile profiles/default all

bench: $(LLAMA_STAMP) resources/models/$(TEST_MODEL).gguf resources/models/$(MODEL).gguf
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## lint: the Python (ruff format, ruff check, mypy on src/) and the workflow (dry run, snakemake --lint, snakefmt)
PY_FILES    := src tests workflow/scripts benchmarks tools
lint: $(VENV)/.installed
	$(BIN)/ruff format --check $(PY_FILES)
	$(BIN)/ruff check $(PY_FILES)
	$(BIN)/mypy
	$(BIN)/snakemake -n --quiet
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

clean-venv:
	rm -rf $(VENV)

## mutation testing (README, "Mutation testing"): mutmut, pinned in the `mutation` extra and
## configured in pyproject's [tool.mutmut], over the estimator and energy modules, one module
## at a time with one child, niced, against the fast unit tests. About 20 min on 2 cores; not in CI.
MUTATE_MODULES ?= metrics.bootstrap metrics.estimands metrics.tables energy.stepwise energy.wrap \
                  accounting.windows accounting.account
$(VENV)/.mutation: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install -q -e '.[mutation]'
	touch $@

mutation: $(VENV)/.mutation
	for m in $(MUTATE_MODULES); do \
	  echo "== alems.$$m"; start=$$(date +%s); \
	  nice -n 10 $(BIN)/mutmut run --max-children 1 "alems.$$m*" > /dev/null || exit 1; \
	  echo "   $$(( $$(date +%s) - start )) s"; \
	done
	$(BIN)/mutmut results --all true | $(BIN)/python tools/mutation_score.py $(addprefix alems.,$(MUTATE_MODULES))

## SLURM: the cluster test on a real three-node cluster with accounting on this machine
## (tests/slurm/cluster.sh: each slurmd in its own network + UTS namespace; tests/test_cluster.py).
## Installs the Debian packages (root, or sudo) and the executor plugin (pyproject's `cluster`
## extra) on first use; fails, never skips, if the cluster cannot start. Where the kernel
## refuses namespaces, one node starts and the multi-node tests are skipped with the reason.
CLUSTER_NODES := 3
CLUSTER_DEBS := slurmctld slurmd slurmdbd slurm-client munge mariadb-server iproute2
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
	$(BIN)/pip install -q -e '.[test,cluster,benchmarks]'
	touch $@

test-cluster: cluster-deps $(VENV)/.cluster
	@start=$$(date +%s); \
	$(SUDO) tests/slurm/cluster.sh up --nodes $(CLUSTER_NODES) || { $(SUDO) tests/slurm/cluster.sh down; exit 1; }; \
	$(BIN)/pytest -q -m cluster tests/test_cluster.py; rc=$$?; \
	$(SUDO) tests/slurm/cluster.sh down; \
	echo "test-cluster: $$(( $$(date +%s) - start )) s (cluster up, tests, down)"; exit $$rc
