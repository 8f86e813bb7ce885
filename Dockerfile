# contest-backend container image.
#
#   docker build -t contest-backend .
#
# Migrations run as a separate step with the schema-changing role, before
# each deploy (the service's own role need not be allowed to change the
# schema):
#
#   docker run --rm -e DATABASE_URL="$MIGRATION_DATABASE_URL" ... contest-backend migrate
#
# then the service, with its own role:
#
#   docker run -p 8080:8080 -e DATABASE_URL=... -e STRIPE_SECRET_KEY=... ... contest-backend
#
# The platform may set PORT; configuration is config/ plus the environment
# (see the README). On `docker stop` (SIGTERM) the service stops accepting,
# finishes in-flight requests and exits.

############################ build ############################
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# Dependencies first, in a layer of their own: it is rebuilt only when
# Cargo.toml or Cargo.lock change. The crate is a placeholder here.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' >src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The project itself. The query macros read .sqlx/ (SQLX_OFFLINE: no database
# at build time); migrations/ is embedded in the binary.
COPY src ./src
COPY migrations ./migrations
COPY .sqlx ./.sqlx
ENV SQLX_OFFLINE=true
# touch: the copied files keep their (older) times, and cargo would otherwise
# take the placeholder build above as up to date.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && cp target/release/contest-backend /build/contest-backend

############################ runtime ############################
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /build/contest-backend /app/contest-backend
COPY config /app/config

USER 10001:10001
ENV APP_ENV=production
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/contest-backend"]
CMD ["serve"]
