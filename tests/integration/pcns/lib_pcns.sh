# lib_pcns.sh - password change notification in the integration tests
# (sourced after lib.sh and ldap/slapd.sh; not a test itself).
#
# start_slapd_named NAME [extra database lines...] : another slapd in
#   $T/NAME (its own ports and database, the same CA as start_slapd), run
#   as process NAME; sets NAME_URI (e.g. SRC_URI for src).
# slapd_sock_lines SOCKET : the sock overlay lines that hand password
#   changes to loom-pcns-notify (LAB.md), with the ACLs it needs.
# pcns_setup : keys (engine, pcns, the notifier dc1), pcns.yaml and
#   pcns-notify.yaml; PCNS_PORT, NOTIFY_CFG.
# start_pcns, start_notify [NAME] : the listener and the notifier.
# no_cleartext PASSWORD... : every store, spool, log and core of the test
#   holds none of them, in clear, base64 (with and without padding), hex or
#   UTF-16LE base64: fails the test otherwise.

PCNS=$LOOM_BUILD_DIR/pcns/loom-pcns
NOTIFY=$LOOM_BUILD_DIR/pcns/loom-pcns-notify

start_slapd_named() {
	local name=$1
	shift
	local upper
	upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
	mkdir -p "$T/$name/db"
	[ -n "${SLAPD_CA:-}" ] || slapd_certs
	SLAPD_DIR=$T/$name write_slapd_conf "$@"
	local port
	port=$(free_port)
	local uri="ldap://127.0.0.1:$port"
	printf -v "${upper}_URI" '%s' "$uri"
	start "$name" slapd -f "$T/$name/slapd.conf" -h "$uri/" -d 0
	wait_for "slapd $name on $uri" 20 ldapsearch -x -H "$uri" -b "" -s base namingContexts
}

slapd_sock_lines() {
	echo "overlay sock"
	echo "socketpath $1"
	echo "extensions binddn peername ssf connid"
	echo "sockops modify extended"
	echo "sockresps result"
}

# seed_named URI N : suffix, ou=people and N users (uid=userI, password pw-userI)
seed_named() {
	local uri=$1 n=$2 i
	{
		printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n' "$SUFFIX"
		printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$SUFFIX"
		for ((i = 1; i <= n; i++)); do
			printf 'dn: uid=user%d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: Number%d\nuserPassword: pw-user%d\n\n' \
				"$i" "$SUFFIX" "$i" "$i" "$i" "$i"
		done
	} >"$T/seed-$n.ldif"
	ldapadd -x -H "$uri" -D "$ROOTDN" -w "$ROOTPW" -f "$T/seed-$n.ldif" >"$T/seed.out" 2>&1 ||
		{ cat "$T/seed.out" >&2; fail "cannot seed $uri"; }
}

pcns_setup() {
	ctl keys gen engine >/dev/null || fail "keys gen engine"
	ctl keys gen pcns >/dev/null || fail "keys gen pcns"
	ctl keys gen dc1 >/dev/null || fail "keys gen dc1"
	PCNS_PORT=$(free_port)
	cat >"$T/pcns.yaml" <<YAML
listen: tcp://127.0.0.1:$PCNS_PORT
notifiers:
  dc1: { key: keys/dc1.pub, agent: ${PCNS_SOURCE_AGENT:-src} }
${PCNS_MORE_NOTIFIERS:-}
retry_interval: ${PCNS_RETRY:-500ms}
engine_timeout: 3s
YAML
	NOTIFY_CFG=$T/pcns-notify.yaml
	cat >"$NOTIFY_CFG" <<YAML
name: dc1
retry_initial: 200ms
retry_max: 2s
ack_timeout: 2s
${PCNS_NOTIFY_EXTRA:-}
YAML
	ctl pcns target add primary --endpoint "tcp://127.0.0.1:$PCNS_PORT" --key "$T/keys/pcns.pub" >/dev/null ||
		fail "pcns target add"
}

start_pcns() {
	start pcns "$PCNS" -c "$CFG"
	wait_log pcns "registered with broker"
	wait_log pcns "listening endpoint="
}

start_notify() {
	local name=${1:-notify}
	start "$name" "$NOTIFY" -c "$CFG" ${2:+--notify-config "$2"}
	wait_log "$name" "notifier ready"
}

no_cleartext() {
	local hits=0 pw form files
	files=$(find "$T" -type f \( -path "$T/state/*" -o -name '*.log' -o -name 'core*' -o -path '*spool*' \) 2>/dev/null)
	for pw in "$@"; do
		for form in "$pw" "$(printf '%s' "$pw" | base64 -w0)" "$(printf '%s' "$pw" | base64 -w0 | tr -d '=')" \
			"$(printf '%s' "$pw" | od -An -tx1 | tr -d ' \n')" "$(printf '%s' "$pw" | iconv -t UTF-16LE | base64 -w0)"; do
			local n
			# shellcheck disable=SC2086
			n=$(cat $files 2>/dev/null | grep -caF -- "$form" || true)
			if [ "$n" != 0 ]; then
				echo "cleartext hit: form '$form' in: $(grep -laF -- "$form" $files 2>/dev/null | tr '\n' ' ')" >&2
			fi
			hits=$((hits + n))
		done
	done
	[ "$hits" = 0 ] || fail "passwords appear $hits times in stores, spools, logs or cores"
	echo "$(echo "$files" | wc -l)"
}

# samba_gpg : a GPG key for the DC's "password hash gpg key ids" (Samba keeps
# the clear text it hands to syncpasswords encrypted to it); exports
# GNUPGHOME and adds the option to SAMBA_GLOBAL. Call before start_samba.
samba_gpg() {
	export GNUPGHOME=$T/gnupg
	mkdir -p -m 700 "$GNUPGHOME"
	gpg --batch --pinentry-mode loopback --passphrase '' \
		--quick-generate-key 'Loom PW Sync <pwsync@lab.example.com>' rsa2048 encrypt,sign never >"$T/gpg.log" 2>&1 ||
		{ cat "$T/gpg.log" >&2; fail "gpg cannot make a key"; }
	local fpr
	fpr=$(gpg --list-keys --with-colons | awk -F: '/^fpr/{print $10; exit}')
	SAMBA_GLOBAL="${SAMBA_GLOBAL:+$SAMBA_GLOBAL|}password hash gpg key ids = $fpr"
}

# start_syncpasswords NOTIFY_CFG : samba-tool user syncpasswords in the DC's
# namespace, its --script a wrapper that runs loom-pcns-notify --samba-script
# (syncpasswords runs the script by path, without arguments).
start_syncpasswords() {
	local ncfg=$1
	cat >"$T/samba-hook.sh" <<HOOK
#!/bin/sh
exec "$NOTIFY" --samba-script -c "$CFG" --notify-config "$ncfg"
HOOK
	chmod 755 "$T/samba-hook.sh"
	in_ad samba-tool user syncpasswords --cache-ldb-initialize --cache-ldb="$T/syncpw.ldb" \
		--attributes=objectGUID,sAMAccountName,pwdLastSet,msDS-KeyVersionNumber,memberOf,virtualClearTextUTF8 \
		--decrypt-samba-gpg --script="$T/samba-hook.sh" -s "$T/dc/etc/smb.conf" >"$T/syncpw-init.log" 2>&1 ||
		{ cat "$T/syncpw-init.log" >&2; fail "syncpasswords --cache-ldb-initialize"; }
	start syncpw nsenter --net="$AD_NETNS" samba-tool user syncpasswords --cache-ldb="$T/syncpw.ldb" \
		-s "$T/dc/etc/smb.conf"
	wait_log syncpw "Waiting for|dirsync|Dirsync|DirSync" 60
}
