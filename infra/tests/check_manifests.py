#!/usr/bin/env python3
"""Renders every overlay under infra/overlays and checks what it would deploy, offline.

1. Schemas: every core kind against Kubernetes' own schemas (kubernetes-validate, strict:
   unknown fields are errors), the SpinApp against spin-operator's CRD schema stored in
   infra/schemas (made strict the same way: the API server would silently drop an unknown
   field, so a typo would deploy as nothing).
2. Coherence with spin.toml and between the objects:
   - every variable of spin.toml is bound in the SpinApp or named as left at its default,
     required ones are bound, none is bound twice or unknown, secret ones come from a Secret;
   - every secretKeyRef names a Secret and key that exist (an overlay without its Secret gets
     the one infra/make-secret makes, as an operator would);
   - every shard in `shards` is a pod of a StatefulSet behind the headless Service its name
     resolves to, every such pod is a shard, with the port the Service serves and the
     password the Redis pods are given;
   - redis_allowed_host (Spin's allowed_outbound_hosts rules) covers every shard;
   - the probes' paths are routed in spin.toml;
   - the NetworkPolicy lets the SpinApp's pods, and only them, reach the shards;
   - autoscaling: an HPA for the SpinApp's Deployment exactly when enableAutoscaling is on.

`--self-test` also breaks each rendering in ways each check must catch, and fails if one is
not caught (a check that cannot fail is not a check).
"""

import base64
import copy
import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
KUBERNETES_VERSION = "1.32.0"
CRD = INFRA / "schemas" / "core.spinkube.dev_spinapps.yaml"
DEFAULTS_ANNOTATION = "tally.dev/variables-at-default"


class Failed(Exception):
    """A check that did not hold."""


def render(overlay):
    kubectl = os.environ.get("KUBECTL", "kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def make_secret(namespace, shards):
    out = subprocess.run(
        [str(INFRA / "make-secret"), namespace, str(shards)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return yaml.safe_load(out)


def strict(schema):
    """The schema with unknown fields refused wherever it lists the fields it knows."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def spinapp_schema():
    crd = [d for d in yaml.safe_load_all(CRD.read_text()) if d][0]
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return strict(version["schema"]["openAPIV3Schema"])


def name_of(doc):
    return f"{doc['kind']}/{doc['metadata']['name']}"


def check_schemas(docs, spinapp):
    for doc in docs:
        if doc["kind"] == "SpinApp":
            errors = sorted(
                jsonschema.Draft7Validator(spinapp).iter_errors(doc), key=lambda e: e.path
            )
            if errors:
                where = "/".join(str(p) for p in errors[0].absolute_path)
                raise Failed(f"{name_of(doc)}: {errors[0].message} (at {where})")
        else:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                where = "/".join(str(p) for p in err.absolute_path)
                raise Failed(f"{name_of(doc)}: {err.message} (at {where})") from None
            except kubernetes_validate.SchemaNotFoundError:
                raise Failed(f"{name_of(doc)}: no Kubernetes schema for this kind") from None


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise Failed(f"expected one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0]


def secret_value(docs, ref):
    secrets = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"]]
    if not secrets:
        raise Failed(f"Secret {ref['name']} is referenced but not deployed")
    secret = secrets[0]
    if ref["key"] in (secret.get("data") or {}):
        return base64.b64decode(secret["data"][ref["key"]]).decode()
    if ref["key"] in (secret.get("stringData") or {}):
        return secret["stringData"][ref["key"]]
    if ref.get("optional"):
        return ""
    raise Failed(f"Secret {ref['name']} has no key {ref['key']}")


def host_allowed(pattern, host, port):
    """Spin's allowed_outbound_hosts host:port matching (a `*.` prefix for subdomains)."""
    want_host, _, want_port = pattern.rpartition(":")
    if want_port != "*" and want_port != str(port):
        return False
    if want_host == "*":
        return True
    if want_host.startswith("*."):
        return host.endswith(want_host[1:])
    return host == want_host


def routed(routes, path):
    """Whether one of spin.toml's routes (exact, or a `/...` prefix) serves `path`."""
    for route in routes:
        if route.endswith("/..."):
            prefix = route[: -len("/...")]
            if path == prefix or path.startswith(prefix + "/"):
                return True
        elif route == path:
            return True
    return False


def check_coherence(docs, manifest):
    app = one(docs, "SpinApp")
    spec = app["spec"]
    namespace = app["metadata"].get("namespace", "default")
    declared = manifest["variables"]
    bound = {}
    for var in spec.get("variables", []):
        if var["name"] in bound:
            raise Failed(f"variable {var['name']} is bound twice")
        bound[var["name"]] = var
    defaults = {
        v.strip()
        for v in (app["metadata"].get("annotations") or {}).get(DEFAULTS_ANNOTATION, "").split(",")
        if v.strip()
    }
    for name in bound.keys() | defaults:
        if name not in declared:
            raise Failed(f"variable {name} is not declared in spin.toml")
    for name, decl in declared.items():
        if name in bound and name in defaults:
            raise Failed(f"variable {name} is both bound and named as left at its default")
        if name not in bound and name not in defaults:
            raise Failed(f"variable {name} of spin.toml is neither bound nor left at its default")
        if decl.get("required") and name not in bound:
            raise Failed(f"required variable {name} is not bound")
        if decl.get("secret") and name in bound:
            ref = (bound[name].get("valueFrom") or {}).get("secretKeyRef")
            if not ref or "value" in bound[name]:
                raise Failed(f"secret variable {name} must come from a Secret (secretKeyRef)")

    def value(name):
        var = bound[name]
        if "value" in var:
            return var["value"]
        return secret_value(docs, var["valueFrom"]["secretKeyRef"])

    # Every Secret reference anywhere resolves.
    for doc in docs:
        for ref in find_secret_refs(doc):
            secret_value(docs, ref)

    # Shards: pods of StatefulSets behind their headless Services, all of them, each once.
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    sets = [d for d in docs if d["kind"] == "StatefulSet"]
    pods = {}
    for sts in sets:
        svc = services.get(sts["spec"]["serviceName"])
        if svc is None or svc["spec"].get("clusterIP") != "None":
            raise Failed(f"StatefulSet {sts['metadata']['name']} has no headless Service")
        port = svc["spec"]["ports"][0]["port"]
        for i in range(sts["spec"].get("replicas", 1)):
            host = f"{sts['metadata']['name']}-{i}.{svc['metadata']['name']}.{namespace}.svc.cluster.local"
            pods[host] = (sts, port)
    shards = {}
    for entry in value("shards").split(","):
        name, _, url = entry.strip().partition("=")
        if not url.startswith(("redis://", "rediss://")):
            raise Failed(f"shard {name}: {url.split('@')[-1]!r} is not a redis:// URL")
        authority = url.split("://", 1)[1].split("/")[0]
        userinfo, _, hostport = authority.rpartition("@")
        host, _, port = hostport.rpartition(":")
        if host not in pods:
            raise Failed(f"shard {name}: {host} is not a pod of a StatefulSet behind a Service here")
        sts, svc_port = pods[host]
        if int(port or 6379) != svc_port:
            raise Failed(f"shard {name}: port {port} is not the Service's {svc_port}")
        if host in shards.values():
            raise Failed(f"shard {name}: {host} is listed twice")
        shards[name] = host
        password = userinfo.partition(":")[2]
        env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if "REDIS_PASSWORD" in env:
            expected = secret_value(docs, env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"])
            if password != expected:
                raise Failed(f"shard {name}: its URL's password is not the one its Redis is given")
        allowed = value("redis_allowed_host")
        if not host_allowed(allowed, host, port or 6379):
            raise Failed(f"shard {name}: redis_allowed_host {allowed!r} does not cover {host}:{port}")
    missing = set(pods) - set(shards.values())
    if missing:
        raise Failed(f"Redis pods that are no shard: {', '.join(sorted(missing))}")

    # Probes routed by spin.toml.
    routes = [t["route"] for t in manifest["trigger"]["http"]]
    for kind in ("readiness", "liveness"):
        probe = (spec.get("checks") or {}).get(kind)
        if not probe:
            raise Failed(f"the SpinApp has no {kind} check")
        path = probe["httpGet"]["path"]
        if not routed(routes, path):
            raise Failed(f"{kind} path {path} is not routed in spin.toml")

    # Only the app's pods reach the shards.
    app_labels = spec.get("podLabels") or {}
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    redis_labels = sets[0]["spec"]["template"]["metadata"]["labels"]
    guarding = [
        p for p in policies
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= redis_labels.items()
        and p["spec"]["podSelector"].get("matchLabels")
    ]
    if not guarding:
        raise Failed("no NetworkPolicy selects the Redis pods")
    for policy in guarding:
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                selector = (peer.get("podSelector") or {}).get("matchLabels")
                if not selector or not selector.items() <= app_labels.items():
                    raise Failed(f"{name_of(policy)} lets pods other than Tally's reach Redis")
            if not rule.get("from"):
                raise Failed(f"{name_of(policy)} lets any pod reach Redis")

    # Autoscaling.
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    if spec.get("enableAutoscaling"):
        if "replicas" in spec:
            raise Failed("the SpinApp sets replicas and enableAutoscaling")
        if not any(h["spec"]["scaleTargetRef"]["name"] == app["metadata"]["name"] for h in hpas):
            raise Failed("enableAutoscaling is on but no HPA scales the SpinApp's Deployment")
    elif hpas:
        raise Failed("an HPA is deployed but the SpinApp does not enable autoscaling")
    return len(shards)


def find_secret_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "secretKeyRef":
                yield value
            else:
                yield from find_secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from find_secret_refs(value)


def with_secrets(docs):
    """The rendering plus the Secret infra/make-secret makes, if the overlay has none."""
    app = one(docs, "SpinApp")
    names = {ref["name"] for ref in find_secret_refs(docs)}
    present = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    if names - present == {"tally-secrets"}:
        sts = one(docs, "StatefulSet")
        namespace = app["metadata"].get("namespace", "default")
        return docs + [make_secret(namespace, sts["spec"].get("replicas", 1))], True
    return docs, False


def check(docs, manifest, spinapp):
    check_schemas(docs, spinapp)
    return check_coherence(docs, manifest)


def mutations():
    """Ways to break a rendering, each of which some check must catch."""

    def spinapp(docs):
        return one(docs, "SpinApp")

    def drop_variable(docs):
        app = spinapp(docs)
        app["spec"]["variables"] = [v for v in app["spec"]["variables"] if v["name"] != "visitor_salt"]

    def plain_secret(docs):
        for v in spinapp(docs)["spec"]["variables"]:
            if v["name"] == "admin_key":
                v.pop("valueFrom")
                v["value"] = "hunter2"

    def unknown_field(docs):
        spinapp(docs)["spec"]["replica"] = 3

    def bad_core_field(docs):
        one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7

    def narrow_allowed_host(docs):
        for v in spinapp(docs)["spec"]["variables"]:
            if v["name"] == "redis_allowed_host":
                v["value"] = "*.redis.elsewhere.svc.cluster.local:6379"

    def unrouted_probe(docs):
        spinapp(docs)["spec"]["checks"]["readiness"]["httpGet"]["path"] = "/healthz"

    def extra_shard_pod(docs):
        one(docs, "StatefulSet")["spec"]["replicas"] += 1

    def open_network(docs):
        one(docs, "NetworkPolicy")["spec"]["ingress"][0]["from"] = [{"podSelector": {}}]

    def missing_secret_key(docs):
        for d in docs:
            if d["kind"] == "Secret":
                d["data"].pop("visitor-salt")

    return [
        drop_variable, plain_secret, unknown_field, bad_core_field, narrow_allowed_host,
        unrouted_probe, extra_shard_pod, open_network, missing_secret_key,
    ]


def main():
    self_test = "--self-test" in sys.argv[1:]
    manifest = tomllib.loads((ROOT / "spin.toml").read_text())
    spinapp = spinapp_schema()
    overlays = sorted(p for p in (INFRA / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    failed = False
    for overlay in overlays:
        docs, made = with_secrets(render(overlay))
        kinds = sorted({d["kind"] for d in docs})
        try:
            shards = check(docs, manifest, spinapp)
            print(
                f"infra/overlays/{overlay.name}: {len(docs)} objects ({', '.join(kinds)}), "
                f"{shards} shards; schemas and coherence checks pass"
                + (" (with the Secret infra/make-secret makes)" if made else "")
            )
        except Failed as err:
            print(f"infra/overlays/{overlay.name}: {err}")
            failed = True
            continue
        if self_test:
            for mutate in mutations():
                broken = copy.deepcopy(docs)
                mutate(broken)
                try:
                    check(broken, manifest, spinapp)
                except Failed as err:
                    print(f"  caught {mutate.__name__}: {err}")
                else:
                    print(f"  NOT caught: {mutate.__name__}")
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
