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
	# test tools: python3 checks loomctl's JSON output (json module)
	python3
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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
