# postgres.Dockerfile: PostgreSQL 15 with wal2json from Debian's packages,
# configured as the bridge needs it (wal_level=logical, wal2json allowed as
# an output plugin, commit timestamps).  Build context: the repository root.
#   docker build -f docker/postgres.Dockerfile -t pgsqlite-bridge-postgres .
# Passwords come from the environment or from files (docker secrets) at the
# first start; none is part of the image.
FROM debian:bookworm-slim

# A fixed uid/gid, so that a rebuilt image still owns an existing volume.
ARG PG_UID=999
ARG PG_GID=999
RUN groupadd --system --gid "$PG_GID" postgres \
    && useradd --system --uid "$PG_UID" --gid postgres --home-dir /var/lib/postgresql \
        --shell /bin/sh postgres \
    && mkdir -p /var/lib/postgresql && chown postgres:postgres /var/lib/postgresql

# postgresql-common first, told not to create the default cluster that
# nobody would use; then the server and wal2json.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-15 postgresql-15-wal2json \
    && rm -rf /var/lib/apt/lists/* \
    && test ! -e /var/lib/postgresql/15/main

# The volume's mount point exists in the image and belongs to postgres, so
# a new named volume starts out owned by it.  The cluster lives one level
# down, in data/pgdata, so that the first start can build it beside and
# rename it into place only once it is complete.
ENV PGDATA=/var/lib/postgresql/data/pgdata \
    POSTGRES_DB=app
RUN mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data && chmod 2775 /var/run/postgresql
COPY docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
COPY docker/postgres-healthcheck.sh /usr/local/bin/postgres-healthcheck.sh

USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# SIGINT is Postgres's fast shutdown: a clean stop in well under the
# default 10 s, so no crash recovery on the next start.
STOPSIGNAL SIGINT
# Over TCP, with a password, against the application database: only the
# real server listens on TCP (the first start's init server does not), and
# it starts only once the init is complete.
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=5 \
    CMD ["/usr/local/bin/postgres-healthcheck.sh"]
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
