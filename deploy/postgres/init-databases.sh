#!/bin/sh
# One database and one role per service (development passwords: <name>-dev).
# Run once by the postgres image, on an empty data volume.
set -eu
for name in users invitations mailer auth_listener; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE $name LOGIN PASSWORD '$name-dev';
CREATE DATABASE $name OWNER $name;
SQL
done
