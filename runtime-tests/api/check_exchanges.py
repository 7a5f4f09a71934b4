#!/usr/bin/env python3
"""Validates every HTTP exchange the Rust end-to-end tests made against Tally's OpenAPI
document, with check_openapi.py's validation (status documented for the operation, content
type documented for that status, body valid against its schema, required headers present).

The tests' HTTP helpers (runtime-tests/tests/support/mod.rs) append each exchange as a JSON
line to target/api-exchanges/<pid>.jsonl; scripts/test empties that directory before
`cargo test` and runs this after it. An exchange is skipped, and counted under its reason, when:

- its host was started with another manifest than tally's own spin.toml (runtime-tests/
  scenarios/*: test-only components and routes), or by something other than the helpers
  (the tally-host binary the shutdown tests run, other servers): the manifest is not known;
- it is a CORS preflight (OPTIONS with Access-Control-Request-Method): the document describes
  preflights once, in its info, not per path;
- it is a 404 for a path no route of spin.toml serves: Spin's (and tally-host's) router answers
  it before any component, and the document describes the routes there are.

HEAD is validated as GET without a body. Exits non-zero, naming each kind of disagreement
with an example and how often it occurred, if any exchange disagrees; and if there is nothing
to check (the tests recorded nothing).
"""

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_openapi import DOC, ROOT, Conformance  # noqa: E402

sys.path.insert(0, str(ROOT / "infra" / "tests"))
from check_manifests import routed  # noqa: E402  (Spin's route matching, shared)

EXCHANGES = ROOT / "target" / "api-exchanges"


ROUTES = [t["route"] for t in tomllib.loads((ROOT / "spin.toml").read_text())["trigger"]["http"]]


def skip_reason(exchange):
    manifest = exchange.get("manifest")
    if manifest is None:
        return "host not started by the test helpers (manifest unknown)"
    if manifest != "tally":
        return "a test manifest, not tally's spin.toml"
    if exchange["method"] == "OPTIONS" and "access-control-request-method" in exchange["request_headers"]:
        return "CORS preflight (described in the document's info)"
    if exchange["status"] == 404 and not routed(ROUTES, exchange["path"].split("?")[0]):
        return "a path spin.toml does not route (the router's 404)"
    return None


def main():
    files = sorted(EXCHANGES.glob("*.jsonl"))
    doc = json.loads(DOC.read_text())
    conformance = Conformance(doc)
    skipped = Counter()
    problems = Counter()
    examples = {}
    for file in files:
        for line in file.read_text().splitlines():
            if not line.strip():
                continue
            exchange = json.loads(line)
            reason = skip_reason(exchange)
            if reason:
                skipped[reason] += 1
                continue
            before = len(conformance.problems)
            conformance.check(exchange["method"], exchange["path"], exchange["status"],
                              exchange["headers"], exchange["body"])
            for problem in conformance.problems[before:]:
                # One entry per kind: the problem without the concrete path.
                where, _, what = problem.partition(": ")
                method, path = where.split(" ", 2)[:2]
                template, _ = conformance.operation("GET" if method == "HEAD" else method, path.split("?")[0])
                key = f"{method} {template or path.split('?')[0]} -> {exchange['status']}: {what}"
                problems[key] += 1
                examples.setdefault(key, (file.name, problem))
    for key, count in sorted(problems.items()):
        file, example = examples[key]
        print(f"exchanges: {key} ({count}x; e.g. {example} in {file})")
    for reason, count in sorted(skipped.items()):
        print(f"exchanges: skipped {count}: {reason}")
    print(f"exchanges: {conformance.checked} recorded answers of {len(files)} test processes checked against "
          f"the document; {sum(problems.values())} disagree ({len(problems)} kinds)")
    if conformance.checked == 0:
        print(f"exchanges: nothing recorded under {EXCHANGES}: run the end-to-end tests first")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
