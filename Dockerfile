# Build in the Rust image, run from a small Debian image as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin fanout

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 fanout && mkdir /data && chown fanout /data
COPY --from=build /src/target/release/fanout /usr/local/bin/fanout
USER fanout
# Streams survive restarts: the append-only file goes in the /data volume.
ENV FANOUT_APPENDONLY="yes" FANOUT_DIR="/data"
VOLUME /data
WORKDIR /data
# 8080: the HTTP listener (SSE, WebSocket, dashboard) when started with --http-port 8080.
EXPOSE 6379 8080
STOPSIGNAL SIGTERM
# Inside a container, listen on every interface (IPv6 too, if the container has it).
# The command line overrides this, so `docker run fanout --bind 10.0.0.5` works.
ENV FANOUT_BIND="0.0.0.0 -::"
# Clients reach a container through Docker's network, never loopback, so protected mode
# is off here, as in the official Redis image. Set a password (FANOUT_REQUIREPASS) or
# keep the port private.
ENV FANOUT_PROTECTED_MODE="no"
# No redis-cli in this image: the binary pings itself (on FANOUT_PORT if set, else 6379).
HEALTHCHECK --interval=10s --timeout=3s CMD ["fanout", "healthcheck"]
# Arguments pass through as with the Redis image: `docker run fanout --port 7000`.
ENTRYPOINT ["fanout"]
