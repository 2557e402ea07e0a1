# samba.sh - a real Samba AD domain controller for the LDAP agent's tests
# (sourced after lib.sh; not a test itself). ../shared/LAB.md has the recipe.
#
# start_samba provisions a domain LAB.EXAMPLE.COM in $T/dc and starts samba
# in the foreground (-i -M single) under lib.sh's start, so cleanup stops it
# by its PID. It listens on 127.0.0.1's standard ports (389, 636, ...): one DC
# per machine at a time. It sets AD_URI AD_BASE AD_ADMIN_DN AD_PW. Tests
# that need it call samba_available first and skip (exit 77) without Samba.

AD_BASE="DC=lab,DC=example,DC=com"
AD_ADMIN_DN="CN=Administrator,CN=Users,$AD_BASE"
AD_PW='Passw0rd!Lab'
AD_URI="ldap://127.0.0.1:389"

# Skips the test (exit 77); called before it starts anything.
samba_skip() {
	trap - EXIT
	rm -rf "$T"
	exit 77
}

samba_available() {
	command -v samba >/dev/null && command -v samba-tool >/dev/null
}

samba_answers() {
	ldapsearch -x -H "$AD_URI" -b "" -s base defaultNamingContext >/dev/null 2>&1
}

port389_free() {
	! (exec 3<>/dev/tcp/127.0.0.1/389) 2>/dev/null
}

# A DC takes 127.0.0.1's standard ports, so two cannot run at once (another
# test's, another worktree's). Waits up to a minute for 389 to be free, then
# skips (exit 77) rather than fail for a reason that is not the code's.
start_samba() {
	local dc=$T/dc deadline=$((SECONDS + 60))
	while ! port389_free; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "skip $TEST_NAME: port 389 on 127.0.0.1 stayed taken for 60 s (another Samba DC or LDAP server)"
			samba_skip
		fi
		sleep 0.5
	done
	mkdir -p "$dc"
	samba-tool domain provision --targetdir="$dc" --realm=LAB.EXAMPLE.COM --domain=LAB \
		--server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass="$AD_PW" \
		--host-name=dc1 --host-ip=127.0.0.1 \
		--option="interfaces = lo" --option="bind interfaces only = yes" \
		--option="pid directory = $dc/run" --option="ncalrpc dir = $dc/run/ncalrpc" \
		--option="winbindd socket directory = $dc/run/winbindd" \
		--option="ntp signd socket directory = $dc/run/ntp_signd" \
		--option="log file = $dc/log/%m.log" >"$T/provision.log" 2>&1 ||
		{ tail -20 "$T/provision.log" >&2; fail "samba-tool domain provision failed"; }
	mkdir -p "$dc/cache" "$dc/log" "$dc/run"
	# Simple binds on 389 for the tests; drop the shares provisioning merges in.
	awk '
		/^\[global\]/ { print; print "\tldap server require strong auth = no"; next }
		/^\[(homes|printers|print\$)\]/ { skip = 1; next }
		/^\[/ { skip = 0 }
		!skip { print }
	' "$dc/etc/smb.conf" >"$dc/etc/smb.conf.new" && mv "$dc/etc/smb.conf.new" "$dc/etc/smb.conf"
	start samba samba -i -s "$dc/etc/smb.conf" -M single
	wait_for "samba on $AD_URI" 60 samba_answers
}

# ad_admin CMD ARGS... : an ldap-utils command bound as Administrator
ad_admin() {
	local cmd=$1
	shift
	"$cmd" -x -H "$AD_URI" -D "$AD_ADMIN_DN" -w "$AD_PW" "$@"
}
