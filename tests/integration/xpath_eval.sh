#!/usr/bin/env bash
# `loomctl xpath eval`: the policy service's XPath compiler and evaluator run
# offline against resources read from a YAML file, with no configuration and
# no running service. Documented examples select what their meaning says on
# tests/data/xpath/resources.yaml; parse errors name the column, show a
# caret and exit 2; errors the data makes exit 3; resources file errors
# name file:line:column and exit 1; -o json, --now, stdin and --help work.
. "$(dirname "$0")/lib.sh"

export LOOM_CONFIG=$T/does-not-exist.yaml
cd "$T" || fail "cannot enter $T"
RES=$LOOM_SOURCE_DIR/tests/data/xpath/resources.yaml
NOW=2026-01-01T00:00:00Z

JS=7fb2b853-24f0-4498-9534-4e10589723c4
MM=11111111-1111-1111-1111-111111111111
RY=22222222-2222-2222-2222-222222222222
ND=33333333-3333-3333-3333-333333333333
Q=44444444-4444-4444-4444-444444444444
G1=aaaaaaaa-0000-0000-0000-000000000001
G2=aaaaaaaa-0000-0000-0000-000000000002
G3=aaaaaaaa-0000-0000-0000-000000000003
G4=aaaaaaaa-0000-0000-0000-000000000004

# expect "ID ID ..." FILTER [FLAGS...] : the ObjectIDs, one per line in byte order, exit 0, nothing on stderr
expect() {
	local want out rc=0
	want=$([ -z "$1" ] || printf '%s\n' $1 | LC_ALL=C sort)
	shift
	out=$("$CTL" xpath eval "$@" 2>"$T/err") || rc=$?
	[ "$rc" -eq 0 ] || fail "xpath eval $* exited $rc: $(cat "$T/err")"
	[ -s "$T/err" ] && fail "xpath eval $* wrote to stderr: $(cat "$T/err")"
	[ "$out" = "$want" ] || fail "xpath eval $*:
  got:  $out
  want: $want"
}

# expect_error STATUS WANT_STDERR ARGS... : the exact standard error, nothing on stdout
expect_error() {
	local status=$1 want=$2 out rc=0
	shift 2
	out=$("$CTL" xpath eval "$@" 2>"$T/err") || rc=$?
	[ "$rc" -eq "$status" ] || fail "xpath eval $* exited $rc, want $status: $(cat "$T/err")"
	[ -z "$out" ] || fail "xpath eval $* printed: $out"
	[ "$(cat "$T/err")" = "$want" ] || fail "xpath eval $*:
  got:  $(cat "$T/err")
  want: $want"
}

# --- documented examples ---------------------------------------------------------------
expect "$MM" "/Approval[ApprovalStatus = 'Pending' and Approver = /Person[AccountName = 'mmeyers']]/Approver" -r "$RES"
expect "$G1 $G3" "/Group[Type= 'Security' and ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P7D'))]" -r "$RES" --now $NOW
expect "$G3 $G4" "/Group[Type = 'Security' and not(Owner = /Person)]" -r "$RES"
expect "$G1 $G2 $G4" "/Group[Owner = /Group[DisplayName = 'Executive Team']/ComputedMember or ComputedMember = /Group[DisplayName = 'Executive Team']/ComputedMember]" -r "$RES"
expect "$MM" "/Group[DisplayName = 'Executive Team']/ComputedMember[ObjectID = /Group[DisplayName = 'Financial Approvers']/ComputedMember]" -r "$RES"
expect "$MM $RY $ND" "/Person[EmployeeType = 'Contractor' or EmployeeType = 'Intern' and ObjectID=/Group[DisplayName = 'Full Time Employees']/ComputedMember]" -r "$RES"
expect "$RY" "/Person[(EmployeeType = 'Contractor' or EmployeeType = 'Intern') and ObjectID=/Group[DisplayName = 'Full Time Employees']/ComputedMember]" -r "$RES"
expect "$ND" "/Person[not(starts-with(DisplayName,'%'))]" -r "$RES"
expect "$ND" "/Person[ObjectID=/Set[DisplayName='~ People with no displayname']/ComputedMember]" -r "$RES"
expect "$MM $Q $JS $RY" "/Person[Domain = 'CORP'] | /Person[Domain = 'DMZ']" -r "$RES"
expect "$JS" "/Person[AccountName = 'ryan']/Manager" -r "$RES"
expect "$MM $RY" "/Person[Manager = /Person[AccountName = 'jsmith']]" -r "$RES"
expect "$RY" "/Person[LastName = \"O'Brien\"]" -r "$RES"
expect "$Q $JS" "/Person[Manager != /Person]" -r "$RES"
expect "$G1 $G2" "/Group[ComputedMember = '$MM']" -r "$RES"
expect "$JS $RY" "/Person[CreatedTime >= '2024-01-15T10:30:00']" -r "$RES"
expect "$JS $MM" "/Person[contains(JobTitle, 'Manager')]" -r "$RES"
expect "" "/Person[contains(JobTitle, 'anager')]" -r "$RES"
expect "$RY" '<Filter xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" Dialect="http://schemas.microsoft.com/2006/11/XPathFilterDialect" xmlns="http://schemas.xmlsoap.org/ws/2004/09/enumeration">/Person[(AccountName = &apos;ryan&apos;)]</Filter>' -r "$RES"
expect "dddddddd-0000-0000-0000-000000000002 dddddddd-0000-0000-0000-000000000003 dddddddd-0000-0000-0000-000000000004" "/_unitTestObject[(ut_svreference = /_unitTestObject[(ut_svstring = 'test1')])]" -r "$RES"
pass "documented examples"

# --- time: --now decides fn:current-dateTime() ---------------------------------------------
expect "$G3" "/Group[ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P3D'))]" -r "$RES" --now $NOW
expect "$G1 $G3" "/Group[ExpirationTime <= op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P3D'))]" -r "$RES" --now 2026-01-02T00:00:00Z
# without --now the clock is used: every expiration in the file is long past in 2126
expect "" "/Group[ExpirationTime > op:add-dayTimeDuration-to-dateTime(fn:current-dateTime(), xs:dayTimeDuration('P36500D'))]" -r "$RES"
pass "--now and the clock"

# --- -o json, stdin, -- -----------------------------------------------------------------------
out=$("$CTL" xpath eval "/Person[Manager = '$JS']" -r "$RES" -o json) || fail "-o json"
[ "$out" = "[\"$MM\",\"$RY\"]" ] || fail "-o json: $out"
out=$("$CTL" -o json xpath eval "/Nothing" --resources="$RES") || fail "global -o json"
[ "$out" = "[]" ] || fail "empty -o json: $out"
out=$(echo "/Person[AccountName = 'ryan']" | "$CTL" xpath eval - -r "$RES") || fail "stdin"
[ "$out" = "$RY" ] || fail "stdin: $out"
pass "-o json, stdin"

# --- errors --------------------------------------------------------------------------------------
expect_error 2 "loomctl xpath eval: column 106: expected 'and', 'or' or ']', found the string ' and Status='
  /Request[Creator=/Group[DisplayName='Elevated Access Security Group']/ComputedMember and Operation='Put' ' and Status='Completed']
                                                                                                           ^" "/Request[Creator=/Group[DisplayName='Elevated Access Security Group']/ComputedMember and Operation='Put' ' and Status='Completed']" -r "$RES"
expect_error 2 "loomctl xpath eval: column 20: expected a string, an integer, true, false, a location path or a datetime after 'DisplayName', found '’' (a typographic quote: strings are delimited by ' or \")
  /Group[DisplayName=’%VALUE%’ and Type=’MailEnabledSecurity’
                     ^" "/Group[DisplayName=’%VALUE%’ and Type=’MailEnabledSecurity’" -r "$RES"
expect_error 2 "loomctl xpath eval: column 60: expected 'and', 'or' or ']', found the end of the filter
  /Group[DisplayName='%VALUE%' and Type='MailEnabledSecurity'
                                                             ^" "/Group[DisplayName='%VALUE%' and Type='MailEnabledSecurity'" -r "$RES"
expect_error 2 "loomctl xpath eval: line 2, column 8: expected an attribute name, not(, contains(, starts-with(, ends-with( or '(', found ']'
      or ]
         ^" "/Person[A = 'x'
    or ]" -r "$RES"
# a parse error is reported even when the resources file is missing: the filter comes first
expect_error 2 "loomctl xpath eval: column 2: expected an object type or '*' after '/', found the end of the filter
  /
   ^" "/" -r "$T/missing.yaml"
expect_error 3 "loomctl xpath eval: column 9: location step 'DisplayName' must be a reference attribute, and 'DisplayName' holds strings
  /Person/DisplayName
          ^" "/Person/DisplayName" -r "$RES"
expect_error 3 "loomctl xpath eval: column 19: a reference is compared with a bare ObjectID, not 'urn:uuid:...' (write '$JS')
  /Person[Manager = 'urn:uuid:$JS']
                    ^" "/Person[Manager = 'urn:uuid:$JS']" -r "$RES"
expect_error 3 "loomctl xpath eval: column 23: '!=' is not supported on multi-valued attribute 'ComputedMember' (write not(ComputedMember = ...))
  /Group[ComputedMember != '$MM']
                        ^" "/Group[ComputedMember != '$MM']" -r "$RES"
pass "filter errors: exit 2 with a caret, data errors exit 3"

printf -- '- ObjectType: Person\n  ObjectID: p1\n  Age: 30\n- ObjectType: Person\n  ObjectID: p2\n  Age: thirty\n' >"$T/bad.yaml"
expect_error 1 "loomctl xpath eval: $T/bad.yaml:6:8: attribute 'Age' holds a string here and an integer at line 3, column 8 (an attribute has one type)" "/Person" -r "$T/bad.yaml"
printf -- '- ObjectType: Person\n  ObjectID: p1\n- ObjectType: Person\n  ObjectID: P1\n' >"$T/dup.yaml"
expect_error 1 "loomctl xpath eval: $T/dup.yaml:4:13: ObjectID 'P1' is given to two resources (first at line 2)" "/Person" -r "$T/dup.yaml"
printf -- '- ObjectType: Person\n  ObjectID: [p1\n' >"$T/broken.yaml"
expect_error 1 "loomctl xpath eval: $T/broken.yaml:3:1: did not find expected ',' or ']' while parsing a flow sequence" "/Person" -r "$T/broken.yaml"
expect_error 1 "loomctl xpath eval: cannot read '$T/missing.yaml': No such file or directory" "/Person" -r "$T/missing.yaml"
pass "resources file errors: exit 1 with file:line:column"

# --- sets and groups of the file get their members from Filter and ExplicitMember ------------------
cat >"$T/sets.yaml" <<'YAML'
- {ObjectType: Person, ObjectID: p1, Dept: Sales}
- {ObjectType: Person, ObjectID: p2, Dept: IT}
- {ObjectType: Group, ObjectID: g1, ExpirationTime: 2026-01-05T00:00:00Z}
- ObjectType: Set
  ObjectID: s-expiring
  Filter: /Group[ExpirationTime <= fn:current-dateTime()]
- ObjectType: Set
  ObjectID: s-sales
  DisplayName: Sales people
  Filter: "/Person[Dept = 'Sales']"
  ExplicitMember: [p2]
YAML
expect "p1 p2" "/Person[ObjectID = /Set[DisplayName = 'Sales people']/ComputedMember]" -r "$T/sets.yaml"
expect "g1" "/Set[ObjectID = 's-expiring']/ComputedMember" -r "$T/sets.yaml" --now 2026-01-10T00:00:00Z
expect "" "/Set[ObjectID = 's-expiring']/ComputedMember" -r "$T/sets.yaml" --now 2026-01-01T00:00:00Z
printf -- '- ObjectType: Set\n  ObjectID: s\n  Filter: /Person[Dept = ]\n' >"$T/badset.yaml"
expect_error 1 "loomctl xpath eval: $T/badset.yaml:3:26: expected a string, an integer, true, false, a location path or a datetime after 'Dept', found ']'" "/Set" -r "$T/badset.yaml"
pass "sets computed from Filter and ExplicitMember, --now included; a bad set filter is a file error"

expect_error 2 "loomctl xpath eval: expected --resources FILE (see loomctl xpath --help)" "/Person"
expect_error 2 "loomctl xpath eval: expected a FILTER (see loomctl xpath --help)" -r "$RES"
expect_error 2 "loomctl xpath eval: more than one filter ('/Person[A' and '= 1]'); quote the filter" "/Person[A" "= 1]" -r "$RES"
expect_error 2 "loomctl xpath eval: unknown option '--frob' (see loomctl xpath --help)" "/Person" --frob
expect_error 2 "loomctl xpath eval: bad --output 'yaml': expected text or json" "/Person" -r "$RES" -o yaml
expect_error 2 "loomctl xpath eval: bad --now 'tomorrow': expected a datetime such as 2026-01-02T03:04:05Z" "/Person" -r "$RES" --now tomorrow
expect_error 2 "loomctl xpath eval: --resources needs a value" "/Person" -r
out=$("$CTL" xpath --help) || fail "xpath --help"
echo "$out" | head -n1 | grep -q "^usage: loomctl xpath eval FILTER --resources FILE" || fail "xpath --help: $out"
echo "$out" | grep -q "examples:" || fail "xpath --help has no examples: $out"
"$CTL" --help | grep -q "^  xpath " || fail "loomctl --help does not list xpath"
pass "usage errors (exit 2) and --help"
