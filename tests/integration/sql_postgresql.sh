#!/usr/bin/env bash
# loom-ma-sql on a real PostgreSQL server (initdb + postgres in a temp dir
# on a loopback port, stopped by its PID) in the full cycle with the engine
# (the scenario is tests/integration/sql/scenario.sh), then what only a
# server shows: a transaction still open when a delta import takes its
# watermark is read by the next delta import (the watermark is the
# snapshot), and a server that goes away fails a run cleanly and is
# reconnected to for the next.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sql/db.sh"
. "$(dirname "$0")/sql/scenario.sh"

db_init postgresql
start_postgres
DB_TRUE=true
DB_FALSE=false
DB_NOW="now()"
DDL_HR="
CREATE TABLE person (id text UNIQUE, given_name text, sn text, title text, hired date, active boolean,
  salary integer, photo bytea, modified timestamptz NOT NULL DEFAULT now(), deleted boolean);
CREATE TABLE person_values (anchor text NOT NULL, name text NOT NULL, value text NOT NULL);
CREATE TABLE loom_changes (seq bigserial PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  object_type text NOT NULL, anchor text NOT NULL, op text NOT NULL);
CREATE INDEX loom_changes_xid ON loom_changes (xid);
CREATE FUNCTION person_changed() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.id IS NOT NULL THEN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', OLD.id, 'D'); END IF;
    RETURN OLD;
  END IF;
  IF NEW.id IS NOT NULL THEN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', NEW.id, left(TG_OP, 1)); END IF;
  RETURN NEW;
END \$\$;
CREATE TRIGGER person_changed AFTER INSERT OR UPDATE OR DELETE ON person FOR EACH ROW EXECUTE FUNCTION person_changed();
CREATE FUNCTION values_changed() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO loom_changes (object_type, anchor, op)
    VALUES ('person', CASE WHEN TG_OP = 'DELETE' THEN OLD.anchor ELSE NEW.anchor END, 'U');
  RETURN NULL;
END \$\$;
CREATE TRIGGER values_changed AFTER INSERT OR UPDATE OR DELETE ON person_values FOR EACH ROW EXECUTE FUNCTION values_changed();
"
DDL_APP="
CREATE TABLE account (uid text PRIMARY KEY, cn text, title text CHECK (title IS NULL OR title <> 'Forbidden'),
  pw_hash text, dn text);
CREATE TABLE account_values (anchor text NOT NULL, name text NOT NULL, value text NOT NULL);
"
sql_scenario

# A transaction open while the watermark is taken: not in this delta, in the next.
mkfifo "$T/tx.in"
start tx psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT user=loom dbname=hr" -f "$T/tx.in"
exec 7>"$T/tx.in"
echo "BEGIN; INSERT INTO person (id, given_name, sn) VALUES ('1005', 'Eve', 'Late');" >&7
wait_for "the open transaction" 10 bash -c "psql -X -A -t 'host=127.0.0.1 port=$PGPORT user=loom dbname=hr' -c \"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'\" | grep -qx 1"
dbx hr "UPDATE person SET title = 'Later' WHERE id = '1002'"
run_profile hrdb delta-import
expect_counter updates 1
expect_counter adds 0
echo "COMMIT;" >&7
exec 7>&-
wait_for "the commit" 10 bash -c "[ \"\$(psql -X -A -t 'host=127.0.0.1 port=$PGPORT user=loom dbname=hr' -c \"SELECT count(*) FROM person WHERE id = '1005'\")\" = 1 ]"
run_profile hrdb delta-import
expect_counter adds 1
pass "postgresql: a transaction open when the watermark was taken is read by the next delta import"

# The server goes away: a clean failure; back: the agent connects again.
stop pg INT
run_profile hrdb full-import 1
grep -qiE "cannot (connect|read the database)|server closed|terminating connection|connection" "$T/run.out" ||
	fail "a run against a stopped server: $(cat "$T/run.out")"
start_pg_server
run_profile hrdb full-import 3
kill -0 "${PIDS[ma_hrdb]}" || fail "loom-ma-sql died"
pass "postgresql: a server that goes away fails the run cleanly; the next run connects again"
stop pg INT
