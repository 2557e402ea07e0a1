# slapd.sh - a real OpenLDAP slapd for the LDAP agent's tests (sourced after
# lib.sh; not a test itself: ctest runs tests/integration/*.sh only).
#
# start_slapd starts one in $T/slapd on 127.0.0.1 (ldap:// and ldaps:// on
# free ports) and on an ldapi:// socket, with the syncprov overlay (content
# sync, RFC 4533), a CA and a server certificate made here by openssl, and
# SASL EXTERNAL over ldapi mapped to the rootdn. It sets:
#   SLAPD_URI SLAPD_LDAPS_URI SLAPD_LDAPI_URI SLAPD_CA SUFFIX ROOTDN ROOTPW
# The server runs in the foreground (-d 0) under lib.sh's start, so cleanup
# stops it by its PID like every other process of the test.

SUFFIX="dc=example,dc=com"
ROOTDN="cn=admin,$SUFFIX"
ROOTPW="s3cret-Root-pw"

slapd_certs() {
	local d=$T/slapd/tls
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Loom Test CA" \
		-keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1 || fail "openssl: cannot make the test CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || fail "openssl: cannot make the server key"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext.cnf" -out "$d/server.pem" >/dev/null 2>&1 || fail "openssl: cannot sign the server certificate"
	SLAPD_CA=$d/ca.pem
}

# write_slapd_conf [extra database lines...] : $T/slapd/slapd.conf, or
# SLAPD_DIR/slapd.conf for another instance (a benchmark's second server);
# SLAPD_NO_SYNCPROV=1 leaves the syncprov overlay out (a syncrepl consumer);
# SLAPD_MODULES lists more modules to load (back_sock.so).
# SLAPD_LOGLEVEL sets loglevel (default: slapd's own, stats).
write_slapd_conf() {
	local s=${SLAPD_DIR:-$T/slapd}
	{
		[ -z "${SLAPD_LOGLEVEL:-}" ] || echo "loglevel $SLAPD_LOGLEVEL"
		echo "include /etc/ldap/schema/core.schema"
		echo "include /etc/ldap/schema/cosine.schema"
		echo "include /etc/ldap/schema/nis.schema"
		echo "include /etc/ldap/schema/inetorgperson.schema"
		echo "pidfile $s/slapd.pid"
		echo "argsfile $s/slapd.args"
		echo "modulepath /usr/lib/ldap"
		echo "moduleload back_mdb.so"
		echo "moduleload syncprov.so"
		for m in ${SLAPD_MODULES:-}; do echo "moduleload $m"; done
		echo "sizelimit unlimited"
		echo "TLSCACertificateFile $T/slapd/tls/ca.pem"
		echo "TLSCertificateFile $T/slapd/tls/server.pem"
		echo "TLSCertificateKeyFile $T/slapd/tls/server.key"
		echo "authz-regexp \"gidNumber=$(id -g)\\\\+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth\" \"$ROOTDN\""
		echo "database mdb"
		echo "maxsize 1073741824"
		echo "suffix \"$SUFFIX\""
		echo "rootdn \"$ROOTDN\""
		echo "rootpw $ROOTPW"
		echo "directory $s/db"
		echo "index objectClass eq"
		echo "index uid,cn,mail eq"
		echo "index entryCSN,entryUUID eq"
		if [ -z "${SLAPD_NO_SYNCPROV:-}" ]; then
			echo "overlay syncprov"
			echo "syncprov-checkpoint 100 1"
			echo "syncprov-sessionlog 10000"
		fi
		for line in "$@"; do echo "$line"; done
	} >"$s/slapd.conf"
}

urlencode_path() {
	local p=$1 out= c i
	for ((i = 0; i < ${#p}; i++)); do
		c=${p:i:1}
		case "$c" in
		[a-zA-Z0-9._-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	echo "$out"
}

slapd_answers() {
	ldapsearch -x -H "$SLAPD_URI" -b "" -s base namingContexts >/dev/null 2>&1
}

# start_slapd [extra database lines...]
start_slapd() {
	mkdir -p "$T/slapd/db"
	[ -n "${SLAPD_CA:-}" ] || slapd_certs
	write_slapd_conf "$@"
	SLAPD_PORT=${SLAPD_PORT:-$(free_port)}
	SLAPD_LDAPS_PORT=${SLAPD_LDAPS_PORT:-$(free_port)}
	SLAPD_URI="ldap://127.0.0.1:$SLAPD_PORT"
	SLAPD_LDAPS_URI="ldaps://127.0.0.1:$SLAPD_LDAPS_PORT"
	SLAPD_LDAPI_URI="ldapi://$(urlencode_path "$T/slapd/ldapi")"
	start slapd slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/ $SLAPD_LDAPS_URI/ $SLAPD_LDAPI_URI/" -d 0
	wait_for "slapd on $SLAPD_URI" 20 slapd_answers
}

# restart_slapd : stops it by its PID and starts it again on the same ports
# and database (its in-memory sync session log is gone).
restart_slapd() {
	stop slapd
	start slapd slapd -f "$T/slapd/slapd.conf" -h "$SLAPD_URI/ $SLAPD_LDAPS_URI/ $SLAPD_LDAPI_URI/" -d 0
	wait_for "slapd on $SLAPD_URI" 20 slapd_answers
}

# ldap_admin CMD ARGS... : an ldap-utils command bound as the rootdn
ldap_admin() {
	local cmd=$1
	shift
	"$cmd" -x -H "$SLAPD_URI" -D "$ROOTDN" -w "$ROOTPW" "$@"
}

# seed_people N : the suffix, ou=people, ou=groups and N inetOrgPersons
# (uid=userI), added over LDAP.
seed_people() {
	local n=$1 i
	{
		printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' "$SUFFIX"
		printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$SUFFIX"
		printf 'dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n' "$SUFFIX"
		for ((i = 1; i <= n; i++)); do
			printf 'dn: uid=user%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: Number%d\nmail: user%d@example.com\nemployeeNumber: %d\n\n' \
				"$i" "$SUFFIX" "$i" "$i" "$i" "$i" "$i"
		done
	} >"$T/seed.ldif"
	ldap_admin ldapadd -f "$T/seed.ldif" >"$T/seed.out" 2>&1 || { cat "$T/seed.out" >&2; fail "cannot seed slapd"; }
}

# slapadd_people N : N inetOrgPersons under ou=people loaded offline by
# slapadd (far faster than ldapadd); slapd must be stopped.
slapadd_people() {
	local n=$1
	awk -v n="$n" -v s="$SUFFIX" 'BEGIN {
		printf "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n", s
		printf "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n", s
		for (i = 1; i <= n; i++)
			printf "dn: uid=user%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: Number%d\nmail: user%d@example.com\nemployeeNumber: %d\n\n", i, s, i, i, i, i, i
	}' >"$T/bulk.ldif"
	slapadd -q -f "$T/slapd/slapd.conf" -l "$T/bulk.ldif" >"$T/slapadd.out" 2>&1 || { cat "$T/slapadd.out" >&2; fail "slapadd failed"; }
}

MALDAP=$LOOM_BUILD_DIR/agents/loom-ma-ldap

# start_ldap_agent NAME : loom-ma-ldap for agents/NAME.yaml
start_ldap_agent() {
	start "ma_$1" "$MALDAP" -c "$CFG" --agent "$1"
	wait_log "ma_$1" "registered with broker"
}
