#!/usr/bin/env python3
"""Runs schemathesis against Tally's OpenAPI document (components/assets/static/openapi.json)
and the running application: tally-host (target/release/tally-host) on two real redis-server
shards, started the way check_openapi.py starts it.

Every phase runs: the document's request examples (it has none yet), coverage (each parameter's boundaries and the
documented 4xx cases), fuzzing, and stateful sequences that follow the document's `links`
(POST /visit/{page} -> GET /visits/{page}, ...). Every check runs: no 5xx (the document's
503s aside), status codes, content types, headers and bodies as documented, bad input
refused with a documented 4xx and good input accepted. The example count is bounded and the
generation deterministic (--generation-deterministic: no random seed, no example database),
so two runs send the same requests. runtime-tests/api/schemathesis.toml holds what JSON
Schema cannot say (requests valid by the schema that the clock makes invalid).

Extra arguments go to `schemathesis run` (e.g. --max-examples 200 for a longer search,
--include-path /metrics). Exits with schemathesis's status: non-zero on any failure.
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_openapi import ADMIN, DOC, ROOT, tally_host  # noqa: E402

# Examples per operation in the fuzzing phase (the examples and coverage phases send what the
# document implies, the stateful phase follows its links): about 4,700 requests over the 24
# operations, about a minute on two cores.
MAX_EXAMPLES = 150


def main():
    # Any site may record visits here, so the pixel and page views are exercised, and the write
    # limit holds the costliest batch (1000 entries of 1000 visits), so no request is refused
    # for its cost.
    with tally_host(allowed_sites="", rate_limit_writes="1000000/1s burst 1000000") as (base, host_problems):
        started = time.monotonic()
        command = [
            str(ROOT / "target/venv/bin/schemathesis"),
            "--config-file", str(Path(__file__).resolve().parent / "schemathesis.toml"),
            "run", str(DOC),
            "--url", base,
            "--header", f"Authorization: Bearer {ADMIN}",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--checks", "all",
            # An erased page is not gone: like a page never visited, it reads as a count of 0
            # (200), so "a deleted resource answers 404" does not apply. (That it reads 0 at
            # once is admin.rs's an_erased_page_reads_zero_at_once_on_the_node_that_erased_it.)
            "--exclude-checks", "use_after_free",
            "--max-examples", str(MAX_EXAMPLES),
            "--generation-deterministic",
            "--workers", "1",
            "--request-timeout", "30",
            "--no-color",
            *sys.argv[1:],
        ]
        # Schemathesis keeps its cache (.schemathesis/) in the working directory: target/.
        result = subprocess.run(command, cwd=ROOT / "target")
        elapsed = time.monotonic() - started
    for p in host_problems:
        print("schemathesis:", p)
    print(f"schemathesis: finished in {elapsed:.0f} s with status {result.returncode}")
    return 1 if result.returncode or host_problems else 0


if __name__ == "__main__":
    sys.exit(main())
