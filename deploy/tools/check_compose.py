#!/usr/bin/env python3
"""Cross-references of docker-compose.yml that its JSON schema cannot see.

- every `depends_on` target is a service, and `service_healthy` targets have a health check;
- every build context (and its Dockerfile) exists;
- every bind-mounted host path and every env_file exists;
- every service running one of this repository's binaries (its command names it) has a
  configuration file (RECEIPTS_CONFIG, bind-mounted) holding only sections that binary reads,
  and no RECEIPTS_* variable for a section it does not read (each binary refuses unknown
  sections at start);
- every Prometheus scrape target names a compose service.

    check_compose.py [docker-compose.yml]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from receipts_sections import SECTIONS, check_file_text, check_variables  # noqa: E402


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(host path, container path) of the bind mounts (short and long syntax)."""
    mounts = []
    for volume in as_list(service.get("volumes")):
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) >= 2 and parts[0].startswith((".", "/", "~")):
                mounts.append((parts[0], parts[1]))
        elif isinstance(volume, dict) and volume.get("type") == "bind":
            mounts.append((volume["source"], volume["target"]))
    return mounts


def main() -> int:
    compose_path = Path(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml")
    base = compose_path.resolve().parent
    compose = yaml.safe_load(compose_path.read_text(encoding="utf-8"))
    services: dict = compose.get("services") or {}
    named_volumes = set((compose.get("volumes") or {}).keys())
    errors: list[str] = []
    checked_configs = 0

    for name, service in services.items():
        where = f"service {name}"
        depends = service.get("depends_on") or {}
        targets = depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)
        for target, condition in targets:
            if target not in services:
                errors.append(f"{where}: depends_on '{target}', which is not a service")
                continue
            if (condition or {}).get("condition") == "service_healthy" and not services[target].get("healthcheck"):
                errors.append(f"{where}: waits for '{target}' to be healthy, but it has no healthcheck")
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            context_path = (base / context).resolve()
            if not context_path.is_dir():
                errors.append(f"{where}: build context {context} does not exist")
            else:
                dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
                if not (context_path / dockerfile).is_file():
                    errors.append(f"{where}: Dockerfile {dockerfile} not found in {context}")
        for env_file in as_list(service.get("env_file")):
            path = env_file if isinstance(env_file, str) else env_file.get("path")
            required = True if isinstance(env_file, str) else env_file.get("required", True)
            if required and not (base / path).exists():
                errors.append(f"{where}: env_file {path} does not exist")
        mounts = bind_mounts(service)
        for host, _ in mounts:
            if not (base / host).exists():
                errors.append(f"{where}: bind-mounted {host} does not exist")
        for volume in as_list(service.get("volumes")):
            if isinstance(volume, str) and ":" in volume and not volume.startswith((".", "/", "~")):
                if volume.split(":")[0] not in named_volumes:
                    errors.append(f"{where}: volume '{volume.split(':')[0]}' is not declared under volumes:")

        command = as_list(service.get("command"))
        binary = str(command[0]) if command else None
        if binary in SECTIONS:
            env = environment(service)
            errors += check_variables(binary, env, where)
            config = env.get("RECEIPTS_CONFIG")
            if not config:
                errors.append(f"{where}: runs {binary} without RECEIPTS_CONFIG")
                continue
            host = next((h for h, c in mounts if c == config), None)
            if host is None:
                errors.append(f"{where}: RECEIPTS_CONFIG={config} is not a bind-mounted file")
                continue
            if (base / host).is_file():
                errors += check_file_text(binary, (base / host).read_text(encoding="utf-8"), f"{where} ({host})")
                checked_configs += 1

    prometheus = services.get("prometheus")
    if prometheus:
        for host, container in bind_mounts(prometheus):
            if container.endswith("prometheus.yml") and (base / host).is_file():
                scrape = yaml.safe_load((base / host).read_text(encoding="utf-8"))
                for job in scrape.get("scrape_configs", []):
                    for static in job.get("static_configs", []):
                        for target in static.get("targets", []):
                            hostname = target.rsplit(":", 1)[0]
                            if hostname not in services and hostname not in ("localhost", "127.0.0.1"):
                                errors.append(f"prometheus job {job.get('job_name')}: target {target} is not a compose service")

    for error in errors:
        print(error)
    print(f"{len(services)} services, {checked_configs} receipts configuration files, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
