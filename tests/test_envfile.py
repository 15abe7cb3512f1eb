"""The conda environment of the rules (``envs/alems.yaml``) and how jobs find A-LEMS.

There is no conda on the development machines, so ``--use-conda`` itself is not run
here. What can be checked is checked: the environment lists every runtime dependency
of ``pyproject.toml`` with the same bounds, holds no relative path (Snakemake builds it
from a copy under ``.snakemake/conda/``), every rule points at it, and every job sees
the checkout's ``src/`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_FILE = REPO / "envs" / "alems.yaml"


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", spec)
    assert m, spec
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def _env_specs() -> dict[str, str]:
    env = yaml.safe_load(ENV_FILE.read_text())
    specs: dict[str, str] = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            assert not item.startswith(("-e", ".", "/", "file:")), (
                f"path entry {item!r} breaks under .snakemake/conda/"
            )
            name, bound = _split(item.replace("=", "==", 1) if re.match(r"^[\w.\-]+=\d", item) else item)
            specs[name] = bound
    return specs


def test_env_covers_the_runtime_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(d) for d in project["dependencies"])
    wanted.pop("snakemake")  # jobs unpickle their snakemake object from the host's Snakemake
    wanted.update(dict(_split(d) for d in project["optional-dependencies"]["llama"]))
    specs = _env_specs()
    for name, bound in wanted.items():
        assert name in specs, f"{name} is a runtime dependency but missing from {ENV_FILE.name}"
        assert specs[name] == bound, f"{name}: pyproject says {bound!r}, {ENV_FILE.name} says {specs[name]!r}"
    assert specs["python"] == "==3.11"


def test_every_rule_uses_the_env_file() -> None:
    rules = sorted((REPO / "workflow" / "rules").glob("*.smk"))
    with_rules = [p for p in rules if re.search(r"^rule ", p.read_text(), re.M)]
    assert with_rules
    for p in with_rules:
        text = p.read_text()
        n_rules = len(re.findall(r"^rule \w+:", text, re.M))
        conda = re.findall(r"conda:\n\s+\"([^\"]+)\"", text)
        assert len(conda) == n_rules, f"{p.name}: {n_rules} rules, {len(conda)} conda: directives"
        for rel in conda:
            assert (p.parent / rel).resolve() == ENV_FILE, f"{p.name}: conda: {rel}"


def test_jobs_see_the_checkout_src_first_on_pythonpath(tmp_path: Path) -> None:
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        f'include: "{REPO / "workflow" / "rules" / "common.smk"}"\n\n'
        'rule probe:\n    output: "pythonpath.txt"\n    shell: "echo $PYTHONPATH > {output}"\n'
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(snakefile),
            "--directory",
            str(tmp_path),
            "--cores",
            "1",
            "probe",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "/elsewhere", "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    parts = (tmp_path / "pythonpath.txt").read_text().strip().split(":")
    assert parts[0] == str(REPO / "src")
    assert "/elsewhere" in parts  # the user's own entries are kept, after it
