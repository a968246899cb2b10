#!/usr/bin/env python3
"""Checks of rendered chart manifests that kubernetes-validate cannot make.

    check_manifests.py RENDERED.yaml --schemas deploy/helm/schemas --builtin-out BUILTIN.yaml

- custom resources (ServiceMonitor, PrometheusRule, ScaledObject, TriggerAuthentication) are
  validated against the vendored JSON schemas; a custom resource without a schema fails;
- the built-in objects are written to --builtin-out for kubernetes-validate;
- every TOML file of the chart's ConfigMaps parses and holds only sections its binary reads, and
  no container sets a RECEIPTS_* variable for a section its binary does not read (each binary
  refuses unknown sections at start);
- every workload's pod runs as non-root with a read-only root filesystem, every Deployment's
  container has startup, liveness and readiness probes, resource requests and a memory limit,
  and every object has a namespace and the app.kubernetes.io labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receipts_sections import SECTIONS, check_file_text, check_variables  # noqa: E402

BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}
WORKLOADS = {"Deployment", "Job", "Pod"}


def group_of(api_version: str) -> tuple[str, str]:
    return tuple(api_version.split("/", 1)) if "/" in api_version else ("", api_version)


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "Pod":
        return doc["spec"]
    return doc["spec"]["template"]["spec"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rendered", type=Path)
    parser.add_argument("--schemas", type=Path, required=True)
    parser.add_argument("--builtin-out", type=Path, required=True)
    args = parser.parse_args()

    docs = [d for d in yaml.safe_load_all(args.rendered.read_text(encoding="utf-8")) if d]
    errors: list[str] = []
    builtin = []
    custom = 0
    configs = 0
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}

    for doc in docs:
        kind = doc["kind"]
        name = doc.get("metadata", {}).get("name", "?")
        where = f"{kind}/{name}"
        group, version = group_of(doc["apiVersion"])
        labels = doc.get("metadata", {}).get("labels", {}) or {}
        for label in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"):
            if label not in labels:
                errors.append(f"{where}: label {label} missing")
        if not doc.get("metadata", {}).get("namespace"):
            errors.append(f"{where}: no metadata.namespace")
        if group in BUILTIN_GROUPS:
            builtin.append(doc)
        else:
            custom += 1
            schema_path = args.schemas / group / f"{kind.lower()}_{version}.json"
            if not schema_path.is_file():
                errors.append(f"{where}: no schema for {doc['apiVersion']} {kind} in {args.schemas}")
                continue
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
            validator = jsonschema.Draft7Validator(schema)
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                path = "/".join(str(p) for p in error.absolute_path)
                errors.append(f"{where}: {path or '(root)'}: {error.message}")

        if kind in WORKLOADS:
            spec = pod_spec(doc)
            pod_context = spec.get("securityContext", {})
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for container in spec.get("containers", []):
                context = container.get("securityContext", {})
                if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
                    errors.append(f"{where}: container {container['name']} may run as root")
                if not context.get("readOnlyRootFilesystem"):
                    errors.append(f"{where}: container {container['name']} has a writable root filesystem")
                if kind == "Deployment":
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                        if probe not in container:
                            errors.append(f"{where}: container {container['name']} has no {probe}")
                    resources = container.get("resources", {})
                    if "memory" not in resources.get("limits", {}) or not resources.get("requests"):
                        errors.append(f"{where}: container {container['name']} needs resource requests and a memory limit")
                command = container.get("command") or []
                binary = command[0] if command else None
                if binary == "receipts" and len(command) > 1 and command[1] == "probe":
                    continue
                if binary not in SECTIONS:
                    continue
                env = [e["name"] for e in container.get("env", [])]
                errors += check_variables(binary, env, f"{where} container {container['name']}")
                config_path = next((e.get("value") for e in container.get("env", []) if e["name"] == "RECEIPTS_CONFIG"), None)
                mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"] == config_path), None)
                if not config_path or not mount:
                    errors.append(f"{where}: {binary} has no configuration file mounted at RECEIPTS_CONFIG")
                    continue
                volume = volumes.get(mount["name"], {})
                source = volume.get("configMap", {})
                item = next((i for i in source.get("items", []) if i["path"] == mount.get("subPath")), None)
                configmap = configmaps.get(source.get("name"))
                if not item or not configmap or item["key"] not in configmap.get("data", {}):
                    errors.append(f"{where}: the configuration file of {binary} is not a key of a rendered ConfigMap")
                    continue
                errors += check_file_text(binary, configmap["data"][item["key"]], f"{where} ({source['name']}/{item['key']})")
                configs += 1

    with args.builtin_out.open("w", encoding="utf-8") as handle:
        yaml.safe_dump_all(builtin, handle, sort_keys=False)
    for error in errors:
        print(error)
    print(f"{len(docs)} objects ({custom} custom resources), {configs} configuration files, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
