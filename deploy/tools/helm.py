#!/usr/bin/env python3
"""`helm lint` and `helm template` without a helm binary, for offline checks.

The PyPI package helm-python-sdk embeds Helm's Go engine (Helm v4) as a shared library and
binds it with ctypes; it ships no `helm` executable. This is the small command line the checks
need on top of it, with helm's own flag names:

    helm.py lint CHART [-f VALUES]... [--set K=V]... [--strict] [--kube-version v1.31.0]
    helm.py template RELEASE CHART [-f VALUES]... [--set K=V]... [-n NAMESPACE]
                     [--skip-tests] [--output FILE]

`template` prints every rendered manifest like `helm template` (a `# Source:` comment before
each document, NOTES.txt and partials left out, hooks and tests included unless --skip-tests)
and exits 1 with the engine's message when rendering fails (a `fail` in a template, a values
file the chart's values.schema.json refuses). `lint` prints each finding and exits 1 on an
error, or on a warning with --strict. Values files merge like helm's: maps deeply, later files
win, `null` removes a key.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - the venv from scripts/tools has it
    sys.exit("helm.py: helm-python-sdk is not installed (run scripts/tools helm)")

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of two values maps: deep for maps, `None` deletes."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_values(files: list[str], sets: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            parsed = helm.values_from_yaml(text) or {}
        except helm.HelmError as error:
            sys.exit(f"helm.py: {path}: {error}")
        values = merge(values, parsed)
    for expression in sets:
        try:
            values = merge(values, helm.parse_set_string(expression))
        except helm.HelmError as error:
            sys.exit(f"helm.py: --set {expression}: {error}")
    return values


def cmd_lint(args: argparse.Namespace) -> int:
    values = load_values(args.values, args.set)
    report = helm.lint(
        args.chart,
        values,
        strict=args.strict,
        namespace=args.namespace,
        kube_version=args.kube_version,
    )
    failed = False
    for message in report.get("messages", []):
        severity = message.get("severity", 0)
        label = SEVERITY.get(severity, str(severity))
        print(f"[{label}] {message.get('path', '')}: {message.get('error', '')}")
        if severity >= 3 or (args.strict and severity >= 2):
            failed = True
    for error in report.get("errors", []) or []:
        print(f"[ERROR] {error}")
        failed = True
    linted = report.get("total_charts_linted", 0)
    if linted < 1:
        print("[ERROR] no chart was linted")
        failed = True
    print(f"{linted} chart(s) linted, {'failed' if failed else 'no failures'}")
    return 1 if failed else 0


def is_manifest(path: str) -> bool:
    name = os.path.basename(path)
    return not (name == "NOTES.txt" or name.startswith("_"))


def cmd_template(args: argparse.Namespace) -> int:
    values = load_values(args.values, args.set)
    try:
        with helm.Chart.load(args.chart) as chart:
            # `helm template` validates the values against values.schema.json before
            # rendering; do the same so a refused value is reported as such.
            chart.validate_schema(chart.merge_values(values))
            rendered = chart.render(
                values,
                name=args.release,
                namespace=args.namespace,
                is_install=True,
            )
    except helm.HelmError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    documents = []
    for path in sorted(rendered):
        if not is_manifest(path):
            continue
        if args.skip_tests and "/templates/tests/" in f"/{path}":
            continue
        body = rendered[path]
        # One template may hold several documents; drop the empty ones like helm does.
        for part in re.split(r"(?m)^---\s*$", body):
            if part.strip():
                documents.append(f"---\n# Source: {path}\n{part.strip()}\n")
    output = "".join(documents)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(output)
    else:
        sys.stdout.write(output)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="helm.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-f", "--values", action="append", default=[])
        p.add_argument("--set", action="append", default=[])
        p.add_argument("-n", "--namespace", default="default")

    lint = sub.add_parser("lint")
    lint.add_argument("chart")
    lint.add_argument("--strict", action="store_true")
    lint.add_argument("--kube-version", default=None)
    common(lint)
    lint.set_defaults(func=cmd_lint)

    template = sub.add_parser("template")
    template.add_argument("release")
    template.add_argument("chart")
    template.add_argument("--skip-tests", action="store_true")
    template.add_argument("--output", default=None)
    common(template)
    template.set_defaults(func=cmd_template)

    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
