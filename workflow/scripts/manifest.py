"""rule manifest: every output with its sha256 and size, plus the provenance hashes."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from alems.jobs.manifest import manifest_job

manifest = manifest_job(snakemake.output[0], snakemake.input.files, hashes_path=snakemake.input.hashes)
print(f"{len(manifest['files'])} files listed", file=sys.stderr)
