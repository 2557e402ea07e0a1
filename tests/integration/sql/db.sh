# db.sh - the databases of loom-ma-sql's tests and benchmarks (sourced after
# lib.sh; not a test itself).
#
#   start_postgres    initdb + postgres in $T/pg on a free loopback port, as
#                     an unprivileged user when the test runs as root
#                     (PostgreSQL refuses to run as root), in the foreground
#                     under lib.sh's start, so cleanup stops it by its PID;
#                     databases hr and app, trust authentication for the
#                     role loom on 127.0.0.1 only. Sets PGPORT.
#   db_init DRIVER    sets DB_DRIVER and the helpers below for postgresql
#                     or sqlite ($T/data/NAME.db)
#   dbx NAME SQL      runs SQL in database NAME (stops the test on error)
#   dbq NAME SQL      prints the rows of a query, '|' between columns
#   db_conf NAME      the YAML lines that make an agent reach database NAME

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}

# pg_exec COMMAND... : replaces the (sub)shell with COMMAND run as the
# database's owner, so that lib.sh's start records the server's own PID
# (start pg pg_exec postgres ...); run it in ( ) for a one-off command.
pg_exec() {
	if [ "$(id -u)" -eq 0 ]; then
		exec setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$T" "$@"
	else
		exec "$@"
	fi
}

# start_pg_server : (again) the server of $T/pg on $PGPORT
start_pg_server() {
	start pg pg_exec "$PG_BIN/postgres" -D "$T/pg" -k "$T/pgsock" -p "$PGPORT" -c listen_addresses=127.0.0.1 \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off
	wait_for "postgres to accept connections" 30 psql -X -q "host=127.0.0.1 port=$PGPORT user=loom dbname=postgres" -c "select 1"
}

start_postgres() {
	[ -x "$PG_BIN/initdb" ] || { echo "skip: PostgreSQL is not installed (initdb)"; exit 77; }
	mkdir -p "$T/pg" "$T/pgsock"
	chmod 755 "$T"
	[ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$T/pg" "$T/pgsock"
	(pg_exec "$PG_BIN/initdb" -D "$T/pg" -A trust -U loom -E UTF8 --locale=C --no-sync) >"$T/initdb.log" 2>&1 ||
		fail "initdb failed: $(tail -n 5 "$T/initdb.log")"
	PGPORT=$(free_port)
	start_pg_server
	for d in hr app; do
		psql -X -q "host=127.0.0.1 port=$PGPORT user=loom dbname=postgres" -c "CREATE DATABASE $d" >/dev/null ||
			fail "cannot create database $d"
	done
}

db_init() {
	DB_DRIVER=$1
	mkdir -p "$T/data"
}

dbx() {
	if [ "$DB_DRIVER" = postgresql ]; then
		psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT user=loom dbname=$1" -c "$2" >/dev/null ||
			fail "SQL failed in $1: $2"
	else
		sqlite3 -batch -bail "$T/data/$1.db" "$2" >/dev/null || fail "SQL failed in $1: $2"
	fi
}

dbq() {
	if [ "$DB_DRIVER" = postgresql ]; then
		psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT user=loom dbname=$1" -c "$2"
	else
		sqlite3 -batch -bail -separator '|' "$T/data/$1.db" "$2"
	fi
}

db_conf() {
	if [ "$DB_DRIVER" = postgresql ]; then
		printf '  driver: postgresql\n  conninfo: "host=127.0.0.1 port=%s dbname=%s user=loom"\n' "$PGPORT" "$1"
	else
		printf '  driver: sqlite\n  database: %s\n' "$T/data/$1.db"
	fi
}
