#!/bin/sh
# Run once by the postgres image, when a node's volume is first initialised: coord's own
# role is an ordinary one, as in production (docs/deploy.md, "The role"): it owns its
# database, may replicate and may create subscriptions; it is not a superuser. The
# image's pg_hba.conf asks every TCP connection for a password (scram-sha-256), which a
# non-superuser's subscription needs.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v pw="$COORD_PG_PASSWORD" <<'SQL'
CREATE ROLE coord LOGIN REPLICATION PASSWORD :'pw';
GRANT pg_create_subscription TO coord;
CREATE DATABASE coord OWNER coord;
SQL
