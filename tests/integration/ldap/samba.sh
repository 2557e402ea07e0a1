# samba.sh - a real Samba AD domain controller for the LDAP agent's tests
# (sourced after lib.sh; not a test itself). ../shared/LAB.md has the recipe.
#
# start_samba provisions a domain LAB.EXAMPLE.COM in $T/dc and starts samba
# in the foreground (-i -M single) under lib.sh's start, so cleanup stops it
# by its PID. A DC takes the standard ports (389, 636, 88, 445...), so it
# runs in a network namespace of its own (unshare --net, loopback only):
# another DC on the machine (another test, another worktree) cannot collide
# with it. Whatever talks to it runs in that namespace through in_ad
# (nsenter): ldap-utils via ad_admin, the agent via start_ad_agent; the bus
# uses ipc:// sockets, which are files, so the agent still reaches the
# broker. Sets AD_URI AD_BASE AD_ADMIN_DN AD_PW AD_NETNS. Tests that need it
# call samba_available first and skip (exit 77) without Samba. SAMBA_GLOBAL
# (lines separated by "|") is added to smb.conf's [global], e.g. TLS files.

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

# in_ad CMD ARGS... : runs CMD in the DC's network namespace
in_ad() {
	nsenter --net="$AD_NETNS" "$@"
}

samba_answers() {
	in_ad ldapsearch -x -H "$AD_URI" -b "" -s base defaultNamingContext >/dev/null 2>&1
}

start_samba() {
	local dc=$T/dc
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
	awk -v extra="${SAMBA_GLOBAL:-}" '
		/^\[global\]/ {
			print; print "\tldap server require strong auth = no"
			n = split(extra, lines, "|")
			for (i = 1; i <= n; i++) if (lines[i] != "") print "\t" lines[i]
			next
		}
		/^\[(homes|printers|print\$)\]/ { skip = 1; next }
		/^\[/ { skip = 0 }
		!skip { print }
	' "$dc/etc/smb.conf" >"$dc/etc/smb.conf.new" && mv "$dc/etc/smb.conf.new" "$dc/etc/smb.conf"
	start samba unshare --net sh -c 'ip link set lo up && exec samba -i -s "$1" -M single </dev/null' sh "$dc/etc/smb.conf"
	AD_NETNS=/proc/${PIDS[samba]}/ns/net
	wait_for "samba on $AD_URI" 60 samba_answers
}

# ad_admin CMD ARGS... : an ldap-utils command bound as Administrator
ad_admin() {
	local cmd=$1
	shift
	in_ad "$cmd" -x -H "$AD_URI" -D "$AD_ADMIN_DN" -w "$AD_PW" "$@"
}

# start_ad_agent NAME : loom-ma-ldap for agents/NAME.yaml, in the DC's namespace
start_ad_agent() {
	start "ma_$1" nsenter --net="$AD_NETNS" "$MALDAP" -c "$CFG" --agent "$1"
	wait_log "ma_$1" "registered with broker"
}
