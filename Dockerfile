# shopbox in a container: docker build -t shopbox . && docker run -d -p 8000:8000 \
#   -v shopbox-data:/data --stop-timeout 45 shopbox   (see the README, "Container")
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY static static
COPY benches benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
# curl only for the health check; versions are Debian bookworm's, updated with the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 shopbox \
    && useradd --system --uid 10001 --gid shopbox --home-dir /data --shell /usr/sbin/nologin shopbox \
    && install -d -m 700 -o shopbox -g shopbox /data
COPY --from=build /src/target/release/shopbox /usr/local/bin/shopbox
COPY config.toml /etc/shopbox/config.toml
ENV SHOPBOX_ADDRESS=0.0.0.0 \
    SHOPBOX_DATA_DIR=/data
# Numeric, so that runtimes can tell it is not root (Kubernetes runAsNonRoot).
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:${SHOPBOX_PORT:-8000}/health || exit 1"]
CMD ["shopbox", "serve", "--config", "/etc/shopbox/config.toml"]
