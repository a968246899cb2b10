#!/usr/bin/env python3
"""The dashboard and the alert rules use only metrics (and labels) that the code exports.

docs/observability.md is the contract: its tables list every `receipts_*` metric with its type
and labels, and the code is kept equal to it. This check reads every PromQL expression of the
Grafana dashboard and of the Prometheus rules and fails when one names a `receipts_*` metric the
document does not list (a histogram `X` may be used as `X_bucket`, `X_sum`, `X_count`), selects
a label the metric does not have, or aggregates by a label none of the expression's metrics
has. With --promtool it also makes promtool parse every dashboard query (Grafana's variables
replaced by sample values), so a typo in PromQL fails here rather than as an empty panel.

    check_observability.py --doc docs/observability.md --dashboard D.json --rules R.yaml
                           [--promtool PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

METRIC = re.compile(r"\breceipts_[a-z0-9_]+\b")
# Labels every series has or gets from the scrape: the document's `service`, and the target
# labels Prometheus (job, instance) and the Prometheus operator (namespace, pod, container,
# endpoint) add.
COMMON_LABELS = {"service", "job", "instance", "namespace", "pod", "container", "endpoint"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__range}": "1h",
    "$namespace": ".*",
}


def read_contract(doc: Path) -> dict[str, tuple[str, set[str]]]:
    """{metric: (type, labels)} from the document's tables."""
    metrics: dict[str, tuple[str, set[str]]] = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`receipts_"):
            continue
        name = cells[0].strip("`")
        kind = cells[1]
        labels = set(re.findall(r"`([a-z_][a-z0-9_]*)`", cells[2]))
        metrics[name] = (kind, labels)
    return metrics


def resolve(name: str, contract: dict[str, tuple[str, set[str]]]) -> tuple[str, set[str]] | None:
    """The documented metric a series name belongs to, and the labels it may carry."""
    if name in contract:
        kind, labels = contract[name]
        return name, set(labels)
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and contract.get(base, ("", set()))[0] == "histogram":
            labels = set(contract[base][1])
            if suffix == "_bucket":
                labels.add("le")
            return base, labels
    return None


def selector_labels(expr: str, name: str) -> list[str]:
    """Label names in the matchers of every `name{...}` selector of expr."""
    found = []
    for match in re.finditer(re.escape(name) + r"\s*\{([^}]*)\}", expr):
        found += re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(1))
    return found


def grouping_labels(expr: str) -> list[str]:
    """Labels of every by (...), without (...), on (...) and ignoring (...) clause."""
    found = []
    for match in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        found += [label.strip() for label in match.group(1).split(",") if label.strip()]
    return found


def check_expression(where: str, expr: str, contract) -> list[str]:
    errors = []
    allowed = set(COMMON_LABELS)
    for name in sorted(set(METRIC.findall(expr))):
        resolved = resolve(name, contract)
        if resolved is None:
            errors.append(f"{where}: `{name}` is not a metric of docs/observability.md")
            continue
        base, labels = resolved
        allowed |= labels
        for label in selector_labels(expr, name):
            if label not in labels | COMMON_LABELS:
                errors.append(f"{where}: `{name}` has no label `{label}` (it has: {', '.join(sorted(labels)) or 'none'})")
    if "le" in grouping_labels(expr) and "_bucket" not in expr:
        errors.append(f"{where}: groups by `le` without a histogram's _bucket series")
    for label in grouping_labels(expr):
        if label not in allowed | {"le"}:
            errors.append(f"{where}: aggregates by `{label}`, which none of its metrics has")
    return errors


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"dashboard panel '{panel.get('title')}' {target.get('refId')}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if isinstance(query, str) and "receipts_" in query:
            found.append((f"dashboard variable '{variable.get('name')}'", query))
    return found


def rule_expressions(rules: dict) -> list[tuple[str, str]]:
    found = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            found.append((f"rule {name}", rule["expr"]))
    return found


def promtool_parse(promtool: str, expressions: list[tuple[str, str]]) -> list[str]:
    """Parse dashboard queries with promtool, as recording rules of a scratch rules file."""
    rules = []
    for index, (where, expr) in enumerate(expressions):
        if expr.startswith("label_values("):
            continue
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, handle)
    result = subprocess.run([promtool, "check", "rules", handle.name], capture_output=True, text=True)
    Path(handle.name).unlink()
    if result.returncode != 0:
        return ["promtool cannot parse a dashboard query:\n" + (result.stdout + result.stderr).strip()]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", required=True, type=Path)
    parser.add_argument("--dashboard", action="append", default=[], type=Path)
    parser.add_argument("--rules", action="append", default=[], type=Path)
    parser.add_argument("--promtool")
    args = parser.parse_args()

    contract = read_contract(args.doc)
    if not contract:
        print(f"no receipts_* metric found in the tables of {args.doc}")
        return 1
    errors: list[str] = []
    used: set[str] = set()
    checked = 0
    dashboard_exprs: list[tuple[str, str]] = []
    for path in args.dashboard:
        exprs = dashboard_expressions(json.loads(path.read_text(encoding="utf-8")))
        dashboard_exprs += exprs
        for where, expr in exprs:
            errors += check_expression(f"{path}: {where}", expr, contract)
            used |= set(METRIC.findall(expr))
            checked += 1
    for path in args.rules:
        for where, expr in rule_expressions(yaml.safe_load(path.read_text(encoding="utf-8"))):
            errors += check_expression(f"{path}: {where}", expr, contract)
            used |= set(METRIC.findall(expr))
            checked += 1
    if args.promtool and dashboard_exprs:
        errors += promtool_parse(args.promtool, dashboard_exprs)
    for error in errors:
        print(error)
    documented_used = {resolve(name, contract)[0] for name in used if resolve(name, contract)}
    print(
        f"{checked} expressions, {len(used)} metric names ({len(documented_used)} of the "
        f"{len(contract)} documented metrics), {len(errors)} problem(s)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
