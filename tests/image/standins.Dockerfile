# Stand-ins for the compose stack's postgres and prom/prometheus images, for
# tests/test_image.py where the registry cannot be reached: BASE is a Debian 12
# made by make-base.sh with Debian's postgresql and prometheus packages, so no
# step here downloads anything. Built with --target postgres or prometheus and
# tagged with the names docker-compose.benchmark.yml uses.
#
# What they stand in for, and what differs: PostgreSQL 15 (Debian 12's) for
# postgres:16, Prometheus 2.42 for prom/prometheus:v3; the same contract as
# the stack uses it (POSTGRES_* variables, data in /var/lib/postgresql/data,
# pg_isready; prometheus as the entrypoint, its storage in /prometheus).

ARG BASE

FROM ${BASE} AS postgres
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]

FROM ${BASE} AS prometheus
RUN mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
