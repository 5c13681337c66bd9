# The ledger as a container image: `docker build -t ledger .`, or with
# PostgreSQL and NATS: `docker compose up --build` (compose.yaml).
# Two stages: the release build, then a slim runtime with the binary alone
# (migrations, the OpenAPI page's assets are compiled in).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ledger --bin ledger

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home ledger
COPY --from=build /src/target/release/ledger /usr/local/bin/ledger
USER ledger
ENV LEDGER_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["ledger"]
CMD ["serve"]
