#!/usr/bin/env bash
# The warm standby drill of standby.sh with host a killed (-9) in the middle
# of the export to slapd instead of the sync: the adds in flight at the kill
# are sent again by host b, refused by slapd as existing, compared with the
# entry there by loom-ma-ldap and found applied, so the run ends without an
# error and no entry is added twice.
LOOM_STANDBY_KILL_DURING=export
# shellcheck source=standby.sh
. "$(dirname "$0")/standby.sh"
