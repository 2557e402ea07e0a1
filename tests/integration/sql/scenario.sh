# scenario.sh - loom-ma-sql in the full cycle with the engine, the same for
# PostgreSQL and SQLite (sourced by sql_postgresql.sh and sql_sqlite.sh
# after db.sh and db_init; DDL_HR and DDL_APP hold the driver's schema).
#
#   - full import of a table with a multi-valued attribute table and typed
#     columns; a NULL anchor is an error on that row with its location
#   - projection, provisioning and export into another database (rows and
#     multi-valued rows), confirmed by the next import
#   - delta import from the change table (update, delete, insert, a change
#     in the multi-valued table), the watermark holding after it
#   - delta import by modified column
#   - one transaction per export batch: a change the database refuses
#     (CHECK constraint) fails alone with the database's message, the
#     others commit
#   - SetPassword through the configured statement

MASQL=$LOOM_BUILD_DIR/agents/loom-ma-sql

sql_scenario() {
	write_config
	mkdir -p "$T/agents" "$T/sync"
	dbx hr "$DDL_HR"
	dbx app "$DDL_APP"
	{
		echo "type: sql"
		echo "object_type: person"
		echo "anchor: id"
		echo "error_limit: 10"
		echo "sql:"
		db_conf hr
		echo "  tables:"
		echo "    - { object_type: person, table: person, anchor: id, multi_valued: { table: person_values } }"
		echo "  delta: { mode: changes, table: loom_changes }"
	} >"$T/agents/hrdb.yaml"
	{
		echo "type: sql"
		echo "object_type: person"
		echo "anchor: id"
		echo "sql:"
		db_conf hr
		echo "  tables:"
		echo "    - { object_type: person, table: person, anchor: id, multi_valued: { table: person_values } }"
		echo "  delta: { mode: modified, column: modified, overlap: 0s, deleted_column: deleted }"
	} >"$T/agents/hrmod.yaml"
	{
		echo "type: sql"
		echo "object_type: person"
		echo "anchor: id"
		echo "sql:"
		db_conf hr
		echo "  tables:"
		echo "    - { object_type: person, table: no_such_table, anchor: id }"
	} >"$T/agents/hrbad.yaml"
	{
		echo "type: sql"
		echo "object_type: account"
		echo "anchor: uid"
		echo "sql:"
		db_conf app
		echo "  tables:"
		echo "    - { object_type: account, table: account, anchor: uid, dn_column: dn, multi_valued: { table: account_values } }"
		echo "  password_statement: \"UPDATE account SET pw_hash = 'set:' || length(CAST(\$2 AS TEXT)) WHERE uid = \$1\""
	} >"$T/agents/app.yaml"
	cat >"$T/sync/people.yaml" <<'YAML'
rules:
  - name: hr-in
    direction: inbound
    agent: hrdb
    cs_type: person
    mv_type: person
    join: [ { match: [ { cs: id, mv: employeeId } ] } ]
    project: true
    flows:
      - { mv: employeeId, expr: id }
      - { mv: givenName, expr: given_name }
      - { mv: sn, expr: sn }
      - { mv: title, expr: title }
      - { mv: uid, expr: 'LowerCase(given_name)' }
      - { mv: mailAlias, expr: mailAlias }
  - name: to-app
    direction: outbound
    agent: app
    cs_type: account
    mv_type: person
    provision: true
    dn: '"uid=" + uid + ",ou=app"'
    deprovision: delete
    flows:
      - { cs: uid, expr: uid, initial: true }
      - { cs: cn, expr: 'givenName + " " + sn' }
      - { cs: title, expr: title }
      - { cs: mailAlias, expr: mailAlias }
mv_deletion:
  - { mv_type: person, when: agent-disconnected, agent: hrdb }
YAML
	dbx hr "INSERT INTO person (id, given_name, sn, title, hired, active, salary) VALUES
	    ('1001', 'Ada', 'Lovelace', 'Analyst', '2019-03-01', $DB_TRUE, 52000),
	    ('1002', 'Bob', 'Byte', 'Clerk', '2020-11-15', $DB_FALSE, 41000),
	    ('1003', 'Cy', 'Ber', NULL, NULL, NULL, NULL),
	    (NULL, 'Nobody', 'Null', NULL, NULL, NULL, NULL)"
	dbx hr "INSERT INTO person_values (anchor, name, value) VALUES ('1001', 'mailAlias', 'ada@example.com'),
	    ('1001', 'mailAlias', 'countess@example.com'), ('1002', 'mailAlias', 'bob@example.com')"

	"$ENGINE" -c "$CFG" --check-config >/dev/null || fail "engine rejects the test configuration"
	"$MASQL" -c "$CFG" --agent hrdb --check-config >/dev/null || fail "loom-ma-sql rejects its configuration"
	ctl keys gen ma.app >/dev/null || fail "keys gen ma.app"
	start_broker
	start_engine
	for a in hrdb hrmod app hrbad; do
		start "ma_$a" "$MASQL" -c "$CFG" --agent "$a"
		wait_log "ma_$a" "registered with broker"
	done

	# ---- loomctl agent test|schema ----
	ctl agent test hrdb >"$T/test.out" || fail "agent test hrdb: $(cat "$T/test.out")"
	grep -qE "^agent hrdb: ok: connected to (PostgreSQL|SQLite); 1 table\(s\) readable" "$T/test.out" ||
		fail "agent test hrdb: $(cat "$T/test.out")"
	rc=0
	ctl agent test hrbad >/dev/null 2>"$T/test.err" || rc=$?
	[ "$rc" = 3 ] && grep -qi "agent hrbad: failed: table 'no_such_table': .*no_such_table" "$T/test.err" ||
		fail "agent test hrbad: rc=$rc $(cat "$T/test.err")"
	ctl agent schema hrdb >"$T/schema.out" || fail "agent schema hrdb: $(cat "$T/schema.out")"
	for want in "^type person anchor=id attributes=" "^  salary +integer +single$" "^  active +boolean +single$" \
		"^  hired +datetime +single$" "^  given_name +string +single$" "^  mailAlias +string +multi$" \
		"^delta import: yes, export: yes$"; do
		grep -qE "$want" "$T/schema.out" || fail "agent schema hrdb lacks '$want': $(cat "$T/schema.out")"
	done
	ctl -o json agent schema hrdb | grep -q '"sampled":"4"' || fail "agent schema -o json: $(ctl -o json agent schema hrdb)"
	pass "$DB_DRIVER: loomctl agent test (tables readable; a missing table named) and agent schema (columns typed, the multi-valued table)"

	# ---- full import ----
	run_profile hrdb full-import 3
	expect_counter adds 3
	grep -qE "malformed-record at table person row [0-9]+: NULL in the anchor column 'id'" "$T/run.out" ||
		fail "the NULL anchor is not an error with its location: $(cat "$T/run.out")"
	out=$(ctl -o json cs show hrdb 1001)
	echo "$out" | grep -q '"int":"52000"' || fail "salary is not an integer: $out"
	echo "$out" | grep -q '"bool":true' || fail "active is not a boolean: $out"
	echo "$out" | grep -q '"time":"1551398400000000"' || fail "hired is not a date: $out"
	n=$(echo "$out" | grep -oE '"(ada|countess)@example.com"' | wc -l)
	[ "$n" -eq 2 ] || fail "the multi-valued attribute did not import: $out"
	pass "$DB_DRIVER: full import: typed columns, the multi-valued table; a NULL anchor is an error with its row"

	# ---- export into the other database ----
	run_profile hrdb full-sync
	expect_counter projected 3
	expect_counter provisioned 3
	run_profile app export
	expect_counter exported-adds 3
	[ "$(dbq app "SELECT uid, cn, title, dn FROM account WHERE uid = 'ada'")" = "ada|Ada Lovelace|Analyst|uid=ada,ou=app" ] ||
		fail "account ada: $(dbq app "SELECT * FROM account")"
	[ "$(dbq app "SELECT count(*) FROM account_values WHERE anchor = 'ada' AND name = 'mailAlias'")" = 2 ] ||
		fail "ada's aliases: $(dbq app "SELECT * FROM account_values")"
	run_profile app full-import
	expect_counter export-confirmed 3
	pass "$DB_DRIVER: export into another database (rows and multi-valued rows), confirmed by the next import"

	# ---- delta import from the change table ----
	dbx hr "UPDATE person SET title = 'Chief Analyst' WHERE id = '1001'"
	dbx hr "DELETE FROM person WHERE id = '1003'"
	dbx hr "INSERT INTO person (id, given_name, sn) VALUES ('1004', 'Dee', 'Dot')"
	dbx hr "INSERT INTO person_values (anchor, name, value) VALUES ('1002', 'mailAlias', 'bobby@example.com')"
	run_profile hrdb delta-import
	expect_counter updates 2
	expect_counter deletes 1
	expect_counter adds 1
	run_profile hrdb delta-import
	grep -qE ', 0 objects(, |$)' "$T/run.out" || fail "the watermark did not hold: $(cat "$T/run.out")"
	run_profile hrdb delta-sync
	run_profile app export
	expect_counter exported-adds 1
	expect_counter exported-deletes 1
	[ "$(dbq app "SELECT title FROM account WHERE uid = 'ada'")" = "Chief Analyst" ] || fail "title not exported"
	[ "$(dbq app "SELECT count(*) FROM account WHERE uid = 'cy'")" = 0 ] || fail "cy not deleted"
	[ "$(dbq app "SELECT count(*) FROM account_values WHERE anchor = 'bob'")" = 2 ] || fail "bob's new alias not exported"
	pass "$DB_DRIVER: delta import from the change table (update, delete, insert, a multi-valued change); the watermark holds"

	# ---- delta import by modified column ----
	run_profile hrmod full-import 3
	run_profile hrmod full-sync
	dbx hr "UPDATE person SET title = 'Boss', modified = $DB_NOW WHERE id = '1002'"
	run_profile hrmod delta-import
	expect_counter updates 1
	grep -q "deletes" "$T/run.out" && fail "a modified-column delta reported deletes"
	pass "$DB_DRIVER: delta import by modified column from the server's watermark"
	# a hard delete is not seen by a delta by modified column; a soft delete
	# (deleted_column, with modified set) is, and a full import skips the row
	dbx hr "INSERT INTO person (id, given_name, sn) VALUES ('1005', 'Eve', 'Eel')"
	run_profile hrmod delta-import
	expect_counter adds 1
	dbx hr "DELETE FROM person WHERE id = '1005'"
	dbx hr "UPDATE person SET deleted = $DB_TRUE, modified = $DB_NOW WHERE id = '1004'"
	run_profile hrmod delta-import
	expect_counter deletes 1
	grep -qE "^  deletes +1 +1004$" "$T/run.out" || fail "the soft delete of 1004 is not the delete: $(cat "$T/run.out")"
	dbx hr "UPDATE person SET deleted = $DB_FALSE, modified = $DB_NOW WHERE id = '1001'"
	run_profile hrmod full-import 3
	grep -q "adds" "$T/run.out" && fail "the full import brought a soft-deleted row back: $(cat "$T/run.out")"
	grep -qE "^  deletes +[0-9]+ .*1005" "$T/run.out" || fail "the full import did not find 1005 gone: $(cat "$T/run.out")"
	pass "$DB_DRIVER: deleted_column: a soft delete is a delete in a delta by modified and absent from a full import; a hard delete is seen only by a full import"

	# ---- a change the database refuses, alone in its batch ----
	dbx hr "UPDATE person SET title = 'Forbidden' WHERE id = '1001'"
	dbx hr "UPDATE person SET title = 'Clerk II' WHERE id = '1002'"
	run_profile hrdb delta-import
	run_profile hrdb delta-sync
	run_profile app export 3
	expect_counter exported-updates 1
	grep -qiE "constraint-violation anchor=ada.*(check|constraint)" "$T/run.out" ||
		fail "the refused change is not reported with the database's message: $(cat "$T/run.out")"
	[ "$(dbq app "SELECT title FROM account WHERE uid = 'bob'")" = "Clerk II" ] || fail "the other change did not commit"
	[ "$(dbq app "SELECT title FROM account WHERE uid = 'ada'")" = "Chief Analyst" ] || fail "the refused change left a trace"
	pass "$DB_DRIVER: a change the database refuses fails alone (its message), the batch's others commit"

	# ---- SetPassword through the configured statement ----
	printf 'correct horse battery\n' | ctl password set --agent app --anchor ada >"$T/pw.out" ||
		fail "password set: $(cat "$T/pw.out")"
	[ "$(dbq app "SELECT pw_hash FROM account WHERE uid = 'ada'")" = "set:21" ] || fail "the statement did not run"
	rc=0
	printf 'x12345678\n' | ctl password set --agent app --anchor nobody >/dev/null 2>"$T/pw2.err" || rc=$?
	[ "$rc" -eq 3 ] && grep -q "no-such-object" "$T/pw2.err" || fail "unknown account: rc=$rc $(cat "$T/pw2.err")"
	grep -rq "correct horse" "$T"/*.log && fail "the password appears in a log"
	pass "$DB_DRIVER: SetPassword runs the configured statement with the password as a parameter"
}
