#!/usr/bin/env bash
# install-deps.sh - install every Debian 12 package Loom needs to build and
# test. Idempotent: installs only what is missing, and runs apt-get update
# only then. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
	# toolchain
	build-essential cmake pkg-config git
	# libraries (DESIGN.md §1)
	libzmq3-dev protobuf-c-compiler libprotobuf-c-dev librocksdb-dev
	libldap-dev libyaml-dev libcmocka-dev libsodium-dev
	# loom-ma-file's DSML (libxml2), loom-ma-sql (libpq, SQLite)
	libxml2-dev libpq-dev libsqlite3-dev
	# test tools: python3 checks loomctl's JSON output (json module) and is
	# the SMTP relay the workflow tests mail through (tests/integration/smtp_sink.py);
	# slapd and ldap-utils are the real directory the LDAP agent's tests
	# start in a temp dir (docs/ldap.md), never the system instance; a
	# Samba AD DC (samba, samba-ad-provision, samba-ad-dc) is their Active
	# Directory (tests/integration/ldap_ad.sh skips without it; it runs the
	# DC in a network namespace of its own: iproute2 brings its loopback up);
	# ldb-tools' ldbmodify changes the DC's invocationId offline (ldap_ad_usn.sh);
	# openssl makes the test CA and server certificates for StartTLS/ldaps;
	# gnupg and python3-gpg let the DC keep clear-text passwords for
	# samba-tool user syncpasswords --decrypt-samba-gpg (tests/integration/pcns_ad.sh);
	# postgresql is the real server loom-ma-sql's tests start in a temp dir
	# (initdb + pg_ctl on a loopback port, never the system cluster), and
	# sqlite3 the shell they inspect SQLite databases with; python3 also
	# runs the example extensible agent (config/examples/ext-agent.py);
	# rocksdb-tools' sst_dump decodes the stores' LZ4-compressed SST files
	# for the secrets audit (tests/integration/secrets_audit.sh)
	python3 slapd ldap-utils samba samba-ad-provision samba-ad-dc ldb-tools iproute2 openssl gnupg python3-gpg
	postgresql sqlite3 rocksdb-tools
	# scripts/fuzz.sh: clang with libFuzzer (libclang-rt-14-dev has
	# libclang_rt.fuzzer); scripts/valgrind.sh: valgrind (docs/testing.md)
	clang libclang-rt-14-dev valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages present"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
	SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages such as slapd start a system instance when installed; tests run
# their own servers, and a system slapd would hold ports 389/636 (which a
# Samba DC needs). A policy-rc.d that forbids service starts (exit 101)
# stops that; one the host already has is left alone.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# install-deps.sh: no service starts during the install\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	own_policy=1
	trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ -n "$own_policy" ]; then
	$SUDO rm -f "$policy"
	trap - EXIT
fi
echo "install-deps: done"
