"""rule fingerprint: hardware, environment and canonical config, with their hashes."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from alems.llm.fetch import file_sha256
from alems.provenance import write_provenance

model = list(snakemake.input.model)
fp = write_provenance(
    snakemake.output.hashes.rsplit("/", 1)[0],
    snakemake.params.config,
    model_sha256=file_sha256(model[0]) if model else None,
    model_name=snakemake.params.config["llm"]["model"],
)
print(f"hashes: {fp.hashes.to_dict()}", file=sys.stderr)
