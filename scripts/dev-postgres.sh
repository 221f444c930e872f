#!/usr/bin/env bash
# dev-postgres.sh — make sure a PostgreSQL server is reachable and that the
# role "piazza" (password "piazza", LOGIN CREATEDB) and the database "piazza"
# owned by it exist, then print the DATABASE_URL on stdout. Diagnostics go to
# stderr. Idempotent.
#
# Environment:
#   DATABASE_URL       if set, it is printed as is and nothing else happens
#   PGHOST, PGPORT     server address (default 127.0.0.1, 5432)
#   PIAZZA_PG_CLUSTER  Debian cluster name to start/create (default main)
#   PIAZZA_PG_VERSION  Debian cluster version (default: the cluster's, else the
#                      newest installed server)
#
# If no server is reachable on a local address it starts the Debian/Ubuntu
# cluster (creating it if needed) and, when PostgreSQL is not installed,
# installs it with apt-get (as root, or with passwordless sudo).
set -euo pipefail

if [[ -n "${DATABASE_URL:-}" ]]; then
	printf '%s\n' "$DATABASE_URL"
	exit 0
fi

HOST="${PGHOST:-127.0.0.1}"
PORT="${PGPORT:-5432}"
CLUSTER="${PIAZZA_PG_CLUSTER:-main}"
VERSION="${PIAZZA_PG_VERSION:-}"
ROLE=piazza
PASSWORD=piazza
DB=piazza

url_host="$HOST"
[[ "$HOST" == *:* ]] && url_host="[$HOST]" # IPv6 literal
URL="postgres://${ROLE}:${PASSWORD}@${url_host}:${PORT}/${DB}?sslmode=disable"

log() { printf 'dev-postgres: %s\n' "$*" >&2; }
die() {
	printf 'dev-postgres: ERROR: %s\n' "$*" >&2
	exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1; }
can_sudo() { have sudo && sudo -n true 2>/dev/null; }
is_local_host() {
	case "$HOST" in
	127.* | localhost | ::1 | "$(hostname 2>/dev/null || echo localhost)") return 0 ;;
	*) return 1 ;;
	esac
}

# Run a command as root (directly or via passwordless sudo).
as_root() {
	if is_root; then
		"$@"
	elif can_sudo; then
		sudo -n "$@"
	else
		return 1
	fi
}

# Run a command as the postgres OS user (for peer auth on the local socket).
as_postgres() {
	(
		cd / # avoid "could not change directory" warnings
		if [[ "$(id -un)" == postgres ]]; then
			"$@"
		elif is_root && have runuser; then
			runuser -u postgres -- "$@"
		elif is_root; then
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		elif have sudo && sudo -n -u postgres true 2>/dev/null; then
			sudo -n -u postgres -- "$@"
		else
			exit 1
		fi
	)
}

can_run_as_postgres() {
	id postgres >/dev/null 2>&1 || return 1
	[[ "$(id -un)" == postgres ]] || is_root || { have sudo && sudo -n -u postgres true 2>/dev/null; }
}

# Is something accepting connections on HOST:PORT?
reachable() {
	if have pg_isready; then
		pg_isready -q -h "$HOST" -p "$PORT" -t 2
	else
		timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$HOST" "$PORT" 2>/dev/null
	fi
}

wait_ready() {
	local i
	for ((i = 0; i < 60; i++)); do
		reachable && return 0
		sleep 0.5
	done
	return 1
}

# psql over TCP as the piazza role; extra args follow.
psql_piazza() {
	PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=5 psql -X -w -q -A -t -v ON_ERROR_STOP=1 \
		-h "$HOST" -p "$PORT" -U "$ROLE" "$@"
}

# OK when piazza/piazza can log in to the piazza database and may create databases.
piazza_ok() {
	local out
	out="$(psql_piazza -d "$DB" -c 'SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user' 2>/dev/null)" || return 1
	[[ "$out" == t ]]
}

SETUP_SQL="
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN
    CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}';
  ELSE
    ALTER ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE ${DB} OWNER ${ROLE}'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DB}') \\gexec
"

# Create role and database with whatever admin access works.
setup_role_and_db() {
	# 1. as postgres over TCP (works with trust auth, or a PGPASSWORD/.pgpass for postgres)
	if PGCONNECT_TIMEOUT=5 psql -X -w -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U postgres -d postgres \
		<<<"$SETUP_SQL" >/dev/null 2>&1; then
		log "created/updated role and database '$DB' as postgres over TCP"
		return 0
	fi
	# 2. as the postgres OS user over the local socket (Debian default: peer auth)
	if is_local_host && can_run_as_postgres; then
		if as_postgres env -u PGHOST -u PGHOSTADDR -u PGUSER -u PGDATABASE -u PGPASSWORD \
			psql -X -w -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres <<<"$SETUP_SQL" >&2; then
			log "created/updated role and database '$DB' as OS user postgres via the local socket"
			return 0
		fi
	fi
	# 3. the role exists with the right password but the database is missing
	if psql_piazza -d postgres -c "CREATE DATABASE ${DB}" >/dev/null 2>&1; then
		log "created database '$DB' as role $ROLE"
		return 0
	fi
	return 1
}

newest_installed_version() {
	local d v=""
	for d in /usr/lib/postgresql/*/bin/postgres; do
		[[ -x "$d" ]] || continue
		d="${d#/usr/lib/postgresql/}"
		d="${d%%/*}"
		if [[ -z "$v" ]] || [[ "$(printf '%s\n%s\n' "$v" "$d" | sort -V | tail -n1)" == "$d" ]]; then
			v="$d"
		fi
	done
	printf '%s' "$v"
}

server_installed() { have pg_ctlcluster && [[ -n "$(newest_installed_version)" ]]; }

install_postgres() {
	local msg="PostgreSQL is not installed and no server is reachable at $HOST:$PORT.
  Install and start it, e.g.:  sudo apt-get install -y postgresql
  (or run a server yourself and set DATABASE_URL, or PGHOST/PGPORT), then rerun."
	have apt-get || die "$msg"
	if ! is_root && ! can_sudo; then
		die "$msg"
	fi
	log "PostgreSQL not installed; installing with apt-get (this takes a minute)..."
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
		{ sleep 5; as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2; } ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
		die "apt-get install postgresql failed"
}

# Start (creating if necessary) the Debian cluster $VERSION/$CLUSTER.
start_cluster() {
	local line cport status
	if [[ -z "$VERSION" ]]; then
		# the newest version that has a cluster of that name, else the newest installed
		VERSION="$(pg_lsclusters -h 2>/dev/null | awk -v c="$CLUSTER" '$2 == c {print $1}' | sort -V | tail -n1)"
		[[ -n "$VERSION" ]] || VERSION="$(newest_installed_version)"
	fi
	line="$(pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c')"
	if [[ -z "$line" ]]; then
		log "creating cluster $VERSION/$CLUSTER on port $PORT"
		as_root pg_createcluster "$VERSION" "$CLUSTER" -p "$PORT" --start >&2 ||
			die "could not create cluster $VERSION/$CLUSTER; run: sudo pg_createcluster $VERSION $CLUSTER -p $PORT --start"
	else
		read -r _ _ cport status _ <<<"$line"
		[[ "$cport" == "$PORT" ]] ||
			die "cluster $VERSION/$CLUSTER is configured for port $cport, not $PORT (set PGPORT=$cport or PIAZZA_PG_CLUSTER)"
		if [[ "$status" != online ]]; then
			log "starting cluster $VERSION/$CLUSTER (port $PORT)"
			# pg_ctlcluster goes through systemctl when systemd runs; fall back to a direct start.
			as_root pg_ctlcluster "$VERSION" "$CLUSTER" start >&2 ||
				as_root pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start >&2 ||
				die "could not start cluster $VERSION/$CLUSTER; run: sudo pg_ctlcluster $VERSION $CLUSTER start"
		fi
	fi
	wait_ready || die "cluster $VERSION/$CLUSTER started but $HOST:$PORT does not accept connections (see /var/log/postgresql/postgresql-$VERSION-$CLUSTER.log)"
	log "PostgreSQL $VERSION/$CLUSTER is accepting connections on $HOST:$PORT"
}

# --- main -------------------------------------------------------------------

if ! reachable; then
	is_local_host || die "no PostgreSQL server reachable at $HOST:$PORT (not a local address, so nothing to start)"
	log "no PostgreSQL server reachable at $HOST:$PORT"
	server_installed || install_postgres
	server_installed || die "PostgreSQL server binaries not found after installation"
	start_cluster
fi

if ! have psql; then
	log "WARNING: psql not found (install postgresql-client); cannot check role '$ROLE' and database '$DB', assuming they exist"
	printf '%s\n' "$URL"
	exit 0
fi

if ! piazza_ok; then
	log "role '$ROLE' / database '$DB' missing or unusable at $HOST:$PORT; creating them"
	setup_role_and_db || true
	piazza_ok || die "could not log in as $ROLE/$PASSWORD to database '$DB' at $HOST:$PORT.
  Create them as a superuser, e.g.:
    sudo -u postgres psql -p $PORT -c \"CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'\"
    sudo -u postgres createdb -p $PORT -O $ROLE $DB
  and make sure pg_hba.conf allows password (scram-sha-256/md5) login from $HOST."
fi

printf '%s\n' "$URL"
