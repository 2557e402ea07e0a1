#!/usr/bin/env bash
# ISMEMBEROF scoping: a VPN system gets an account for every member of the
# staff group in corp, and loses it when the member leaves the group. The
# group's membership is the metaverse's (references resolved through it),
# and a membership change refreshes just that member.
#
# (The deployment is lib_refs.sh's, plus the vpn agent and rule.)
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/lib_refs.sh"
refs_deploy '  - name: vpn-out
    direction: outbound
    agent: vpn
    cs_type: account
    mv_type: person
    link_type: provision
    deprovision: delete
    scope_filter:
      - all:
          - { attribute: member, operator: ISMEMBEROF, value: "CN=Staff,ou=groups,o=corp", agent: corp }
    dn: '"'"'"uid=" + uid + ",ou=vpn,dc=example,dc=com"'"'"'
    flows:
      - { cs: objectClass, expr: '"'"'"account"'"'"', initial: true }
      - { cs: uid, expr: uid, initial: true }'
cat >"$T/agents/vpn.yaml" <<'YAML'
type: file
anchor: dn
file: { format: ldif, path: ../data/vpn.ldif }
YAML
vpn_has() { grep -qi "^dn: uid=$1,ou=vpn,dc=example,dc=com$" "$T/data/vpn.ldif" 2>/dev/null; }

start_broker
start_engine
start_agent hr
start_agent corp
start_agent directory
start_agent vpn

run_profile hr full-import
run_profile hr full-sync
[ "$(counter provisioned)" -eq 4 ] || fail "only the 4 directory accounts should be provisioned before the group exists"
run_profile corp full-import
run_profile corp full-sync
run_profile vpn export
vpn_has ada || fail "Ada (a member) has no VPN account: $(cat "$T/data/vpn.ldif" 2>/dev/null)"
vpn_has bob || fail "Bob (a member) has no VPN account"
if vpn_has cy || vpn_has dee; then fail "a non-member got a VPN account: $(cat "$T/data/vpn.ldif")"; fi
run_profile vpn full-import
run_profile vpn full-sync

# Cy joins the group: one refresh, one provisioning.
printf 'dn: cn=staff,ou=groups,o=corp\nchangetype: modify\nadd: member\nmember: uid=cy,ou=people,o=corp\n-\n\n' \
	>"$T/data/changes/0001.ldif"
run_profile corp delta-import
run_profile corp delta-sync
expect_counter reference-refreshes 2   # Cy (a member now), and the group for the VPN system (Cy has a connector there now)
expect_counter provisioned 1
run_profile vpn export
vpn_has cy || fail "Cy joined the group but has no VPN account"

# Bob leaves it: deprovisioned (deleted) from the VPN system.
printf 'dn: cn=staff,ou=groups,o=corp\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,o=corp\n-\n\n' \
	>"$T/data/changes/0002.ldif"
run_profile corp delta-import
run_profile corp delta-sync
expect_counter deprovisioned 1
run_profile vpn export
if vpn_has bob; then fail "Bob left the group but keeps his VPN account"; fi
vpn_has ada || fail "Ada lost her VPN account"
vpn_has cy || fail "Cy lost his VPN account"

# A bad group agent is refused at load with the file and clause.
sed -i 's/agent: corp }$/agent: crop }/' "$T/sync/people.yaml"
out=$("$ENGINE" -c "$CFG" --check-config 2>&1) && fail "a clause naming an unknown agent was accepted"
echo "$out" | grep -q "people.yaml: rule 'vpn-out': scope_filter group 1 clause 1 (member): no agent 'crop'" ||
	fail "unclear error for an unknown agent: $out"
pass "ISMEMBEROF provisions group members, follows joins and leaves one member at a time, and checks its agent"
