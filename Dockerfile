# syntax=docker/dockerfile:1.7
#
# One image with every binary of the platform:
#   ingest-gateway validator tax-registrar logistics-registrar status-projector
#   webhook-dispatcher folder-ingest mock-registries receipts (CLI: setup, store migrate,
#   clients, dlt, probe, ingest-folder)
#
# There is no service ENTRYPOINT: the container's command names the binary, e.g.
#   docker run IMAGE ingest-gateway
#   docker run IMAGE receipts setup
# (Kubernetes: `command: ["validator"]`; compose: `command: ["validator"]`.) Without a command
# the image prints the CLI's help. Each binary reads RECEIPTS_CONFIG (a TOML file) and
# RECEIPTS_* variables (docs/configuration.md). There is no shell in the runtime image: health
# checks run `receipts probe http://127.0.0.1:<port>/readyz`.
#
# Build (BuildKit): docker build -t receipts:dev .
#   --build-arg VERSION=1.2.3 --build-arg REVISION=$(git rev-parse HEAD) label the image.
# Layers: the builder's toolchain, then the dependencies (cargo-chef cooks them from the
# manifests and Cargo.lock only, so a source change does not rebuild them), then our crates.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS chef
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Native build dependencies: librdkafka is compiled by rdkafka-sys (C, make; perl and python3
# for its configure scripts; OpenSSL for TLS/SASL via the `ssl` feature), zlib is compiled in
# statically (LIBZ_SYS_STATIC below), libsql compiles SQLite (C), aws-lc-sys may use cmake.
# Versions come with the pinned Debian release of the base image (bookworm); pinning each
# package to a Debian revision would break the build whenever a security update replaces it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential \
        cmake \
        libssl-dev \
        perl \
        pkg-config \
        python3 \
        zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.77 \
    && rm -rf "$CARGO_HOME/registry" "$CARGO_HOME/git"
WORKDIR /src
# zlib linked statically: the distroless runtime has no libz.so.1.
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=planner /src/recipe.json recipe.json
# The same package selection as the final build, so features unify the same way and the cooked
# dependencies are the ones the final build uses.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json \
        -p ingest-gateway -p validator -p registrar -p status-projector \
        -p webhook-dispatcher -p folder-ingest -p mock-registries -p receipts
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked \
        -p ingest-gateway -p validator -p registrar -p status-projector \
        -p webhook-dispatcher -p folder-ingest -p mock-registries -p receipts \
    && mkdir -p /out/bin \
    && for binary in ingest-gateway validator tax-registrar logistics-registrar \
        status-projector webhook-dispatcher folder-ingest mock-registries receipts; do \
        cp "target/release/$binary" /out/bin/ || exit 1; \
    done
# The runtime image has glibc, libgcc, libstdc++ and OpenSSL 3 and nothing else: refuse to ship
# a binary that needs any other shared library (it would only fail when started).
RUN unexpected="$(ldd /out/bin/* | awk '/=>/ {print $1}' | sort -u \
        | grep -v -E '^(linux-vdso|libc|libm|libgcc_s|libstdc\+\+|libssl|libcrypto|libpthread|libdl|librt|ld-linux[^ ]*)\.so' || true)" \
    && if [ -n "$unexpected" ]; then \
        echo "binaries need libraries the runtime image lacks: $unexpected" >&2; exit 1; \
    fi \
    && /out/bin/receipts --version

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# Where the source lives (e.g. the repository URL); set by the pipeline that builds the image.
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="receipts" \
      org.opencontainers.image.description="Fiscal receipts platform: ingest-gateway, validator, tax-registrar, logistics-registrar, status-projector, webhook-dispatcher, folder-ingest, mock-registries and the receipts CLI. The command names the binary." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.documentation="docs/operations.md" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder --chown=0:0 --chmod=0755 /out/bin/ /usr/local/bin/
# distroless "nonroot" is 65532:65532; numeric so that runAsNonRoot can verify it.
USER 65532:65532
WORKDIR /home/nonroot
# Gateway API and probes; consumer services' admin listener (probes, /metrics); mock registries.
EXPOSE 8080 9090 8091 8092
CMD ["receipts", "--help"]
