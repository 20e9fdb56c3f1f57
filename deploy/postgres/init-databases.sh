#!/bin/bash
# Creates one database and one owner role per service. Run once by the postgres
# image, from /docker-entrypoint-initdb.d/, when the data directory is empty.
# Passwords come from <SERVICE>_DB_PASSWORD variables; they reach SQL only as
# psql variables (:'password' is quoted as a literal, :"role" as an
# identifier), so no value can change the statement.
set -Eeo pipefail

csc_create_database() {
    local name="$1" password_var="$2"
    local password="${!password_var}"
    if [ -z "$password" ]; then
        echo "init-databases: $password_var is empty or unset" >&2
        return 1
    fi
    echo "init-databases: creating role and database $name"
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" \
        --dbname "${POSTGRES_DB:-postgres}" \
        -v name="$name" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT ALL ON DATABASE :"name" TO :"name";
SQL
}

csc_create_database gateway GATEWAY_DB_PASSWORD
csc_create_database identity IDENTITY_DB_PASSWORD
csc_create_database groups GROUPS_DB_PASSWORD
csc_create_database enrollment ENROLLMENT_DB_PASSWORD
csc_create_database sync_iwds SYNC_IWDS_DB_PASSWORD
csc_create_database notify NOTIFY_DB_PASSWORD
csc_create_database readiness READINESS_DB_PASSWORD
