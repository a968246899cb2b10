"""Which configuration sections each binary of the image accepts.

Every binary deserializes its configuration with `deny_unknown_fields`: a section it does not
read, in its TOML file (RECEIPTS_CONFIG) or as a RECEIPTS_<SECTION>__<KEY> variable, stops it at
start. docker compose and the Helm chart therefore give each binary a file of its own; the
checks use this table (docs/configuration.md, "Which sections each binary reads", plus `admin`,
the consumer services' admin listener) to catch a section in the wrong place before a
deployment does.
"""

from __future__ import annotations

import re
import tomllib

SHARED = {"kafka", "schema_registry", "telemetry"}
SECTIONS: dict[str, set[str]] = {
    "ingest-gateway": SHARED
    | {"gateway", "registry_callbacks", "webhooks", "store", "receipt_types"},
    "validator": SHARED | {"admin", "receipt_types"},
    "tax-registrar": SHARED | {"admin", "registry", "retry"},
    "logistics-registrar": SHARED | {"admin", "registry", "retry"},
    "status-projector": SHARED | {"admin", "status", "store"},
    "webhook-dispatcher": SHARED | {"admin", "webhooks", "store"},
    "mock-registries": {"tax", "logistics", "telemetry"},
    # A client of the gateway's HTTP API: no Kafka, registry or store.
    "folder-ingest": {"admin", "telemetry", "folder_ingest"},
    # receipts up / setup / store / clients / dlt / list read the whole platform configuration.
    "receipts": SHARED
    | {
        "embedded",
        "mocks",
        "registries",
        "retry",
        "status",
        "gateway",
        "webhooks",
        "store",
        "receipt_types",
    },
}
# What a deployed binary's file must hold: without it, the binary would run on its loopback
# defaults (127.0.0.1:9092, sqlite://data/...) instead of the cluster's services, or on the
# built-in receipt types only instead of the deployment's.
REQUIRED: dict[str, set[str]] = {
    "ingest-gateway": {"kafka", "schema_registry", "store", "gateway", "receipt_types"},
    "validator": {"kafka", "schema_registry", "receipt_types"},
    "tax-registrar": {"kafka", "schema_registry", "registry"},
    "logistics-registrar": {"kafka", "schema_registry", "registry"},
    "status-projector": {"kafka", "schema_registry", "store"},
    "webhook-dispatcher": {"kafka", "schema_registry", "store"},
    "mock-registries": {"tax", "logistics"},
    "folder-ingest": {"folder_ingest"},
    "receipts": {"kafka", "schema_registry", "store"},
}
# RECEIPTS_CONFIG names the file; RECEIPTS_LOG is reserved for log filters.
IGNORED_VARIABLES = {"RECEIPTS_CONFIG", "RECEIPTS_LOG"}
VARIABLE = re.compile(r"^RECEIPTS_([A-Z0-9_]+?)(?:__.*)?$")


def variable_section(name: str) -> str | None:
    """The section a RECEIPTS_* variable sets, lower case (None: not a setting)."""
    if name in IGNORED_VARIABLES or not name.startswith("RECEIPTS_"):
        return None
    match = VARIABLE.match(name)
    return match.group(1).lower() if match else None


def check_file_text(binary: str, text: str, where: str) -> list[str]:
    """Problems of one TOML configuration meant for `binary`."""
    if binary not in SECTIONS:
        return [f"{where}: unknown binary '{binary}'"]
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        return [f"{where}: not valid TOML: {error}"]
    problems = [
        f"{where}: section [{section}] is not read by {binary} (it reads: {', '.join(sorted(SECTIONS[binary]))}); it would refuse to start"
        for section in parsed
        if section not in SECTIONS[binary]
    ]
    problems += [
        f"{where}: no [{section}] section: {binary} would use its loopback default"
        for section in sorted(REQUIRED[binary] - set(parsed))
    ]
    return problems


def check_variables(binary: str, names, where: str) -> list[str]:
    problems = []
    for name in names:
        section = variable_section(name)
        if section is not None and binary in SECTIONS and section not in SECTIONS[binary]:
            problems.append(f"{where}: {name} sets section '{section}', which {binary} does not read; it would refuse to start")
    return problems
