#!/usr/bin/env bash
# loom-ma-sql on SQLite in the full cycle with the engine (the scenario is
# tests/integration/sql/scenario.sh; the PostgreSQL run is sql_postgresql.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sql/db.sh"
. "$(dirname "$0")/sql/scenario.sh"
command -v sqlite3 >/dev/null || { echo "skip: the sqlite3 shell is not installed"; exit 77; }

db_init sqlite
DB_TRUE=1
DB_FALSE=0
DB_NOW="strftime('%Y-%m-%d %H:%M:%f', 'now')"
DDL_HR="
PRAGMA journal_mode = WAL;
CREATE TABLE person (id TEXT UNIQUE, given_name TEXT, sn TEXT, title TEXT, hired DATE, active BOOLEAN,
  salary INTEGER, photo BLOB, modified TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
  deleted BOOLEAN);
CREATE TABLE person_values (anchor TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE loom_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, object_type TEXT NOT NULL,
  anchor TEXT NOT NULL, op TEXT NOT NULL);
CREATE TRIGGER person_i AFTER INSERT ON person WHEN NEW.id IS NOT NULL
  BEGIN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', NEW.id, 'I'); END;
CREATE TRIGGER person_u AFTER UPDATE ON person WHEN NEW.id IS NOT NULL
  BEGIN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', NEW.id, 'U'); END;
CREATE TRIGGER person_d AFTER DELETE ON person WHEN OLD.id IS NOT NULL
  BEGIN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', OLD.id, 'D'); END;
CREATE TRIGGER values_i AFTER INSERT ON person_values
  BEGIN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', NEW.anchor, 'U'); END;
CREATE TRIGGER values_d AFTER DELETE ON person_values
  BEGIN INSERT INTO loom_changes (object_type, anchor, op) VALUES ('person', OLD.anchor, 'U'); END;
"
DDL_APP="
PRAGMA journal_mode = WAL;
CREATE TABLE account (uid TEXT PRIMARY KEY, cn TEXT, title TEXT CHECK (title IS NULL OR title <> 'Forbidden'),
  pw_hash TEXT, dn TEXT);
CREATE TABLE account_values (anchor TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL);
"
sql_scenario
