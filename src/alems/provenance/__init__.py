"""Provenance: what machine, software and config produced a result, and whether it changed since.

This package owns

* the **hardware fingerprint** (``hardware.json``, :mod:`~alems.provenance.hardware`): CPU
  identity and topology, governor, turbo and frequency limits, RAM, RAPL zones with their
  ranges and power limits, GPUs, kernel and virtualisation. RAPL zones and GPUs are read
  through the energy layer (:mod:`~alems.provenance.meters`);
* the **environment** (``environment.json``, :mod:`~alems.provenance.environment`): Python,
  every installed distribution, the llama-cpp-python build flags, the model's sha256, the
  git commit and dirty state;
* the **canonical config** (``config.json``): sorted keys, defaults filled in;
* the hashes ``hw_hash``, ``env_hash``, ``config_hash`` (sha256 of the canonical JSON
  of each of the three files, first 16 hex characters) and ``run_id`` (the same over
  the three hashes together), and the refusal to aggregate runs whose hashes differ
  (:mod:`~alems.provenance.hashing`); the four files written together
  (:mod:`~alems.provenance.record`);
* the **manifest** (every output with its sha256 and size, plus the hashes) and its
  verification (:mod:`~alems.provenance.manifest`).

Fields that change from run to run on an unchanged machine (timestamps, current
frequency, temperatures, uptime, load, host name, GPU UUIDs, absolute paths) are kept
in a separate ``volatile`` record written beside the hashes and never hashed.

Everything the fingerprint reads from the host comes through :class:`HostPaths`, an
NVML module handle and a command runner (:mod:`~alems.provenance.host`), so tests build
a fake host under ``tmp_path``.

It measures no energy.
"""

from alems.io import file_sha256
from alems.provenance.environment import (
    DEFAULT_CODE_PATHS,
    collect_environment,
    git_state,
    installed_distributions,
    read_llama_build,
)
from alems.provenance.hardware import (
    collect_cpu,
    collect_cpufreq,
    collect_hardware,
    collect_memory,
    collect_virtualisation,
    cpu_power_state,
    parse_cpuinfo,
    read_turbo,
)
from alems.provenance.hashing import (
    HASH_FIELDS,
    HASH_LEN,
    Compatibility,
    Hashes,
    canonical_config,
    check_compatible,
    compute_run_id,
    load_hashes,
    sha256_json,
    short_hash,
)
from alems.provenance.host import HostPaths, Runner, run_command
from alems.provenance.manifest import (
    MANIFEST_VERSION,
    VerifyReport,
    build_manifest,
    read_manifest,
    verify_manifest,
    write_manifest,
)
from alems.provenance.meters import collect_gpus, collect_rapl, powercap_zones
from alems.provenance.record import Fingerprint, fingerprint, write_provenance

__all__ = [
    "DEFAULT_CODE_PATHS",
    "HASH_FIELDS",
    "HASH_LEN",
    "MANIFEST_VERSION",
    "Compatibility",
    "Fingerprint",
    "Hashes",
    "HostPaths",
    "Runner",
    "VerifyReport",
    "build_manifest",
    "canonical_config",
    "check_compatible",
    "collect_cpu",
    "collect_cpufreq",
    "collect_environment",
    "collect_gpus",
    "collect_hardware",
    "collect_memory",
    "collect_rapl",
    "collect_virtualisation",
    "compute_run_id",
    "cpu_power_state",
    "file_sha256",
    "fingerprint",
    "git_state",
    "installed_distributions",
    "load_hashes",
    "parse_cpuinfo",
    "powercap_zones",
    "read_llama_build",
    "read_manifest",
    "read_turbo",
    "run_command",
    "sha256_json",
    "short_hash",
    "verify_manifest",
    "write_manifest",
    "write_provenance",
]
