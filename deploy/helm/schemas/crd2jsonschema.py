#!/usr/bin/env python3
"""Turn CustomResourceDefinitions into strict JSON schemas for offline validation.

    crd2jsonschema.py OUTPUT_DIR CRD.yaml...

Writes OUTPUT_DIR/<group>/<kind>_<version>.json (lower case, the kubeconform/datree layout) for
every served version, from the version's openAPIV3Schema, made strict the way the API server
prunes: an object with declared properties accepts no other key (additionalProperties: false)
unless it says x-kubernetes-preserve-unknown-fields; x-kubernetes-int-or-string becomes
"integer or string"; nullable adds "null". The vendored schemas in this directory were made this
way from the upstream CRDs named in README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def strict(node):
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in [k for k in out if k.startswith("x-kubernetes-")]:
        out.pop(key)
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def main() -> int:
    output = Path(sys.argv[1])
    for path in sys.argv[2:]:
        for crd in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict(version["schema"]["openAPIV3Schema"])
                schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
                schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
                schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                target = output / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
                print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
