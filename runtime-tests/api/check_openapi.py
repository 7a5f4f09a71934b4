#!/usr/bin/env python3
"""Checks Tally's OpenAPI document (components/assets/static/openapi.json) three ways:

1. it is a valid OpenAPI 3.1 document (openapi-spec-validator);
2. it covers the application: every path it documents is routed by spin.toml, and every
   route of spin.toml has a documented path under it;
3. the running application answers as it says: tally-host (target/release/tally-host, built
   by scripts/test) is started on two local shards, every operation is called with good and
   bad input, and each answer's status must be documented for the operation, its content type
   documented for that status, its body valid against the documented schema, and the
   documented headers present. GET /openapi.json must serve the document itself, and GET
   /docs (rendered from it at build time) show every operation and schema.

Exits non-zero, naming each disagreement, if any check fails.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from contextlib import contextmanager
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import referencing
from openapi_spec_validator import validate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "tests"))
from check_manifests import routed  # noqa: E402  (Spin's route matching, shared)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "components" / "assets" / "static" / "openapi.json"
ADMIN = "openapi-check-admin-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def covered(doc, manifest):
    """Paths without a route, and routes without a path."""
    routes = [t["route"] for t in manifest["trigger"]["http"]]

    def documented_and_routed(path):
        return routed(routes, re.sub(r"\{[^}]+\}", "x", path))

    problems = [
        f"{p} is documented but not routed by spin.toml"
        for p in doc["paths"]
        if not documented_and_routed(p)
    ]
    for route in routes:
        prefix = route[: -len("/...")] if route.endswith("/...") else route
        if not any(re.sub(r"\{[^}]+\}", "x", p).startswith(prefix) for p in doc["paths"]):
            problems.append(f"route {route} has no documented path")
    return problems


class Conformance:
    def __init__(self, doc):
        self.doc = doc
        resource = referencing.Resource.from_contents(
            doc, default_specification=referencing.jsonschema.DRAFT202012
        )
        self.registry = referencing.Registry().with_resource("urn:tally:openapi", resource)
        self.templates = [
            (re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "(.+)", re.escape(p)) + "$"), p)
            for p in sorted(doc["paths"], key=lambda p: (-p.count("/"), p))
        ]
        self.checked = 0
        self.problems = []

    def deref(self, node, pointer):
        """The node a `$ref` leads to, and its JSON pointer in the document."""
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            target = self.doc
            for part in pointer.removeprefix("/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node, pointer

    def operation(self, method, path):
        """The documented path template and operation; the template alone when the path is
        documented but not for this method."""
        found = None
        for pattern, template in self.templates:
            if pattern.match(path):
                op = self.doc["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
                found = found or template
        return found, None

    def check(self, method, path, status, headers, body):
        """Checks one answer; HEAD is checked as GET without a body."""
        self.checked += 1
        where = f"{method} {path} -> {status}"
        head = method == "HEAD"
        method = "GET" if head else method
        template, op = self.operation(method, path.split("?")[0])
        if op is None:
            # A method a documented path does not answer: the document's convention (info) is
            # 405 with Allow and a problem.
            if template is not None and status == 405 and "allow" in headers:
                template, op = template, {"responses": {"405": {"$ref": "#/components/responses/MethodNotAllowed"}}}
            else:
                self.problems.append(f"{where}: not documented")
                return
        documented = op["responses"].get(str(status))
        if documented is None:
            self.problems.append(f"{where}: status not documented for {method} {template}")
            return
        escaped = template.replace("~", "~0").replace("/", "~1")
        documented, pointer = self.deref(
            documented, f"/paths/{escaped}/{method.lower()}/responses/{status}"
        )
        for name, header in documented.get("headers", {}).items():
            header, _ = self.deref(header, "")
            if header.get("required") and name.lower() not in headers:
                self.problems.append(f"{where}: required header {name} missing")
        content = documented.get("content")
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if not content:
            return
        if ctype not in content:
            self.problems.append(f"{where}: content type {ctype!r} not in {sorted(content)}")
            return
        schema = content[ctype].get("schema")
        if head or schema is None or not (ctype == "application/json" or ctype.endswith("+json")):
            return
        try:
            value = json.loads(body)
        except ValueError as err:
            self.problems.append(f"{where}: body is not JSON ({err})")
            return
        media = ctype.replace("~", "~0").replace("/", "~1")
        wrapped = {"$ref": f"urn:tally:openapi#{pointer}/content/{media}/schema"}
        validator = jsonschema.Draft202012Validator(wrapped, registry=self.registry)
        for error in validator.iter_errors(value):
            at = "/".join(str(p) for p in error.absolute_path)
            self.problems.append(f"{where}: {error.message} (at {at or 'the body'})")
            break


@contextmanager
def tally_host(shards=2, **variables):
    """Runs target/release/tally-host on `shards` real redis-server shards (the host starts and
    stops them) with the admin key ADMIN, generous rate limits and one allowed site, or the
    Spin `variables` given instead; yields its base URL and a list that, once the block is
    left, holds the host's exit problem."""
    port = free_port()
    values = {"admin_key": ADMIN, "rate_limit_writes": "1000/1s burst 1000",
              "rate_limit_reads": "1000/1s burst 1000", "allowed_sites": "site.example", **variables}
    env = dict(os.environ, **{"SPIN_VARIABLE_" + k.upper(): v for k, v in values.items()})
    host = subprocess.Popen(
        [str(ROOT / "target/release/tally-host"), "--manifest", str(ROOT / "spin.toml"), "--shards", str(shards),
         "--quiet", "--kv", "memory", "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    problems = []
    try:
        for line in host.stderr:
            if "tally-host: serving" in line:
                break
        else:
            raise SystemExit("tally-host did not start")
        yield f"http://127.0.0.1:{port}", problems
    finally:
        host.send_signal(signal.SIGINT)
        host.communicate(timeout=30)
        if host.returncode != 0:
            problems.append(f"tally-host exited with {host.returncode}")


def call(base, method, path, headers=None, body=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def requests_to_make():
    """(method, path, headers, body): every operation, with good and bad input."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    admin = {"Authorization": "Bearer " + ADMIN}
    json_ = {"Content-Type": "application/json"}
    browser = {"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://site.example",
               "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"}
    bot = dict(browser, **{"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    yield "POST", "/visit/home", {}, b""
    yield "POST", "/visit/blog/a?referrer=news.example.com", {"Idempotency-Key": "k-1"}, b""
    yield "POST", "/visit/blog/a?referrer=not%20a%20host", {}, b""
    yield "POST", "/visit/" + "x" * 300, {}, b""
    yield "POST", "/visit", json_, json.dumps({"visits": [{"page": "/blog/a", "count": 3}, {"page": "/"}]})
    yield "POST", "/visit", json_, json.dumps({"visits": [{"page": "a", "count": 3, "at": today + "T00:00:00Z"}]})
    yield "POST", "/visit", json_, "{not json"
    yield "POST", "/visit", json_, json.dumps({"visits": [{"page": "a", "count": 0}]})
    yield "POST", "/visit", {"Content-Type": "application/xml"}, "<visits/>"
    yield "POST", "/visit", json_, json.dumps({"visits": [{"page": "p%d" % i} for i in range(1001)]})
    yield "POST", "/visit", browser, json.dumps({"page": "/pricing", "referrer": "news.example.com"})
    yield "POST", "/visit", bot, json.dumps({"page": "/pricing", "referrer": ""})
    yield "GET", "/visit/home/pixel.gif", {}, None
    yield "PUT", "/visit/home", {}, b""
    yield "GET", "/visits/home", {}, None
    yield "GET", "/visits/home", {}, None
    yield "GET", "/visits/home/badge.svg?label=views&color=blue", {}, None
    yield "GET", "/visits/home/badge.svg?color=%3Cscript%3E", {}, None
    yield "GET", "/visits/home/history", {}, None
    yield "GET", "/visits/home/history?interval=hour", {}, None
    yield "GET", "/visits/home/history?from=2999-01-01", {}, None
    yield "GET", "/visits?top=2", {}, None
    yield "GET", "/visits?top=2&cursor=2", {}, None
    yield "GET", "/visits?top=0", {}, None
    yield "GET", "/visits?top=5&from=" + today, {}, None
    yield "GET", "/stats", {}, None
    yield "GET", "/stats?from=" + today + "&top=3", {}, None
    yield "GET", "/stats?from=banana", {}, None
    yield "GET", "/stats/history", {}, None
    yield "GET", "/stats/history?interval=hour", {}, None
    yield "GET", "/export", {}, None
    yield "GET", "/export", {"Authorization": "Bearer wrong"}, None
    yield "GET", "/export?format=ndjson", admin, None
    yield "GET", "/export?what=metrics", admin, None
    yield "GET", "/export?format=xml", admin, None
    yield "DELETE", "/visits/gone", admin, None
    yield "DELETE", "/visits/gone", {}, None
    yield "POST", "/metrics", json_, json.dumps({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "value": 1.5, "type": "cpu"})
    yield "POST", "/metrics", json_, json.dumps([{"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "value": 2, "type": "mem"}])
    yield "POST", "/metrics", json_, json.dumps({"timestamp": "yesterday", "value": 1, "type": "cpu"})
    yield "POST", "/metrics", json_, "[]"
    yield "POST", "/metrics", {"Content-Type": "text/plain"}, "1"
    yield "GET", "/metrics", {}, None
    yield "GET", "/metrics?type=cpu&limit=10", {}, None
    yield "GET", "/metrics?limit=0", {}, None
    yield "GET", "/metrics?type=Bad%20Type", {}, None
    yield "GET", "/summary?type=cpu", {}, None
    yield "GET", "/summary?type=cpu&period=hourly", {}, None
    yield "GET", "/summary?type=cpu&period=weekly", {}, None
    yield "GET", "/summary", {}, None
    yield "GET", "/health", {}, None
    yield "GET", "/health/live", {}, None
    yield "POST", "/health", {}, b""
    yield "GET", "/tally.js", {}, None
    yield "GET", "/dashboard", {}, None
    yield "GET", "/openapi.json", {}, None
    yield "GET", "/docs", {}, None


def main():
    doc = json.loads(DOC.read_text())
    problems = []
    try:
        validate(doc)
    except Exception as err:  # the validator's own error types
        problems.append(f"not a valid OpenAPI 3.1 document: {err}")
    manifest = tomllib.loads((ROOT / "spin.toml").read_text())
    problems += covered(doc, manifest)

    conformance = Conformance(doc)
    with tally_host() as (base, host_problems):
        for method, path, headers, body in requests_to_make():
            status, got_headers, got_body = call(base, method, path, headers, body)
            if status >= 500 and status != 503:
                problems.append(f"{method} {path}: {status}")
            conformance.check(method, path, status, got_headers, got_body)
        status, _, served = call(base, "GET", "/openapi.json")
        if status != 200 or json.loads(served) != doc:
            problems.append("GET /openapi.json does not serve the document")
        status, _, page = call(base, "GET", "/docs")
        page = page.decode()
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if f'id="{op["operationId"]}"' not in page:
                    problems.append(f"GET /docs does not show {method.upper()} {path}")
        for name in doc["components"]["schemas"]:
            if f'id="schema-{name}"' not in page:
                problems.append(f"GET /docs does not show the schema {name}")
    problems += conformance.problems + host_problems
    for p in problems:
        print("openapi:", p)
    print(f"openapi: {len(doc['paths'])} paths documented; {conformance.checked} answers of the running app checked; "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
