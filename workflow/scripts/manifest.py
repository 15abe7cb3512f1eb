"""rule manifest: every output with its sha256 and size, plus the provenance hashes."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from alems.provenance import load_hashes, write_manifest

manifest = write_manifest(
    snakemake.output[0],
    list(snakemake.input.files),
    load_hashes(snakemake.input.hashes),
)
print(f"{len(manifest['files'])} files listed", file=sys.stderr)
