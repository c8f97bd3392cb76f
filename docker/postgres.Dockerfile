# postgres.Dockerfile: PostgreSQL 15 with wal2json from Debian's packages,
# configured as the test suite's cluster is (tests/pg-cluster.sh):
# wal_level=logical, wal2json allowed as an output plugin.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        postgresql-15 postgresql-15-wal2json \
    && rm -rf /var/lib/apt/lists/*
COPY docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
