#!/usr/bin/env bash
# Prep for benchmarks/gpu_check.sh: download the wheels the GPU host lacks, on a machine that
# can reach the package index (the GPU host cannot). Run from the repository root:
#
#     bash benchmarks/gpu/prep_wheels.sh            # -> benchmarks/gpu/wheels/ (git-ignored)
#
# The GPU host has Python 3.12 with torch, numpy, pandas and pyarrow in /opt/torch/.venv but no
# snakemake and no jsonschema. benchmarks/gpu/wheel_list.py lists the closure of what the check
# needs beyond those (HOST_HAS; matplotlib is not among them: figures are drawn only where the
# host has it), pinned to the versions of this machine's tested venv; each is
# fetched with `pip download --no-deps --only-binary :all:` for CPython 3.12 on manylinux
# x86_64. A pure-Python project published only as a source archive (connection_pool) is built
# here into a py3-none-any wheel with `pip wheel --no-deps`. PY defaults to the project venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=/work/main/.venv/bin/python
DEST=benchmarks/gpu/wheels
HOST_HAS=${HOST_HAS:-"numpy pandas pyarrow torch"}
# pulp (16 MB, with solver binaries) serves only snakemake's ILP scheduler; the check runs
# --scheduler greedy. Everything must fit the 64 MiB a device call carries (about 47 MB).
DROP=${DROP:-"pulp"}
TARGET=(--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux2010_x86_64 --platform manylinux_2_12_x86_64 --platform linux_x86_64 --platform any)
rm -rf "$DEST" && mkdir -p "$DEST"
"$PY" benchmarks/gpu/wheel_list.py --skip "$HOST_HAS $DROP" > "$DEST/requirements.txt"
while read -r pin; do
    if ! "$PY" -m pip download --quiet --no-deps --only-binary :all: "${TARGET[@]}" -d "$DEST" "$pin" 2>/dev/null; then
        "$PY" -m pip wheel --quiet --no-deps -w "$DEST" "$pin"
        built=$(ls "$DEST" | grep -i "^${pin%%==*}-" | grep -v "none-any.whl$" || true)
        [ -z "$built" ] || { echo "$pin: no cp312 wheel and the source builds a platform wheel ($built)"; exit 1; }
        echo "$pin: built from source (pure Python)"
    fi
done < "$DEST/requirements.txt"
echo "wheels for the GPU host in $DEST: $(ls "$DEST"/*.whl | wc -l) files, $(du -sh "$DEST" | cut -f1)"
