#!/usr/bin/env bash
# `loomctl expr eval`: the engine's expression compiler and evaluator run
# offline, with no configuration and no running service. The documented
# examples of the MIM 2016 and Entra Connect function references give exactly
# the output they document; compile errors name the line and column and
# exit 1; run-time errors exit 3; multi-valued attributes and -o json work.
. "$(dirname "$0")/lib.sh"

# No deployment file anywhere near: eval must not need one.
export LOOM_CONFIG=$T/does-not-exist.yaml
cd "$T" || fail "cannot enter $T"

# expect WANT EXPRESSION [FLAGS...] : the exact standard output, exit 0, nothing on stderr
expect() {
	local want=$1 out rc=0
	shift
	out=$("$CTL" expr eval "$@" 2>"$T/err") || rc=$?
	[ "$rc" -eq 0 ] || fail "expr eval $* exited $rc: $(cat "$T/err")"
	[ -s "$T/err" ] && fail "expr eval $* wrote to stderr: $(cat "$T/err")"
	[ "$out" = "$want" ] || fail "expr eval $*:
  got:  $out
  want: $want"
}

# expect_error STATUS WANT_STDERR EXPRESSION [FLAGS...] : the exact standard error, nothing on stdout
expect_error() {
	local status=$1 want=$2 out rc=0
	shift 2
	out=$("$CTL" expr eval "$@" 2>"$T/err") || rc=$?
	[ "$rc" -eq "$status" ] || fail "expr eval $* exited $rc, want $status: $(cat "$T/err")"
	[ -z "$out" ] || fail "expr eval $* printed: $out"
	[ "$(cat "$T/err")" = "$want" ] || fail "expr eval $*:
  got:  $(cat "$T/err")
  want: $want"
}

# --- documented examples (FUNCTIONS-TABLE.md), one per line of output ---------------
expect 'string "TEST"' 'UpperCase("test")'
expect 'string "test"' 'LCase("TeSt")'
expect 'string "Britta Simon"' 'ProperCase("britta simon")'
expect 'string "Test"' 'PCase("TEsT")'
expect 'string "Test "' 'LTrim(" Test ")'
expect 'string "User000000"' 'RightPad("User", 10, "0")'
expect 'string "000000User"' 'PadLeft("User", 10, "0")'
expect 'string "One Microsoft Way"' 'ReplaceString("One\n\rMicrosoft\n\rWay", "\n\r", " ")'
expect 'string "function"' 'Word("Test;of%function;", 3, ";$&%")'
expect 'string ""' 'Word("Test;;Function", 2, ";")'
expect 'string "Bri"' 'Left("Britta Simon", 3)'
expect 'string "mon"' 'Right("Britta Simon", 3)'
expect 'string "itta "' 'Mid("Britta Simon", 3, 5)'
expect 'integer 8' 'Len("John Doe")'
expect 'string "t-bsimon"' 'IIF(Eq(EmployeeType, "Intern"), "t-" + Alias, Alias)' --attr EmployeeType=Intern --attr Alias=bsimon
expect 'string "bsimon"' 'IIF(Eq(EmployeeType, "Intern"), "t-" + Alias, Alias)' --attr EmployeeType=Employee --attr Alias=bsimon
expect 'boolean true' 'LessThan(Salary, 100000)' --int Salary=50000
expect 'string "One Microsoft Way\r\nRedmond"' 'AddressLine1 + CRLF() + AddressLine2' -a 'AddressLine1=One Microsoft Way' -a AddressLine2=Redmond
expect 'integer 7' 'BitAnd(&HF, &HF7)'
expect 'boolean true' 'IsBitSet(&HF, 4)'
expect 'string "2007-12-25"' 'DateTimeFormat("12/25/2007", "yyyy-MM-dd")'
expect 'string "2007-12-25"' 'FormatDateTime(CDate("12/25/2007"), "yyyy-MM-dd")'
expect 'string "20140905081453.0Z"' 'FormatDateTime(DateFromNum(pwdLastSet), "yyyyMMddHHmmss.0Z")' --int pwdLastSet=130543784930000000
expect 'datetime 2013-01-11T00:00:00Z' 'CDate("2013-01-10 4:00 PM -8")'
expect 'datetime 2001-04-01T00:00:00Z' 'DateAdd("m", 3, CDate("2001-01-01"))'
expect 'datetime 2012-01-01T23:00:00Z' 'DateFromNum(129699324000000000)'
expect 'integer 129699324000000000' 'NumFromDate(CDate("2012-01-01 23:00:00"))'
expect 'integer 5' 'InStr("The quick brown fox", "quick")'
expect 'integer 7' 'InStr("repEated", "e", 3, vbBinaryCompare)'
expect 'integer 7' 'InStrRev("abbcdbbbef", "bb")'
expect 'string "Hello world!"' 'ConvertFromBase64("SABlAGwAbABvACAAdwBvAHIAbABkACEA")'
expect 'string "SGVsbG8gd29ybGQh"' 'ConvertToBase64("Hello world!", UTF8)'
expect 'string "48656C6C6F20776F726C6421"' 'ConvertToUTF8Hex("Hello world!")'
expect 'string "Hello world!"' 'ConvertFromUTF8Hex("48656C6C6F20776F726C6421")'
expect 'string "Raksmorgas"' 'ReplaceChars("Räksmörgås", "’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö:o")'
dn='cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com'
expect 'string "Joe"' 'DNComponent(CRef(dn), 1)' --attr "dn=$dn"
expect 'string "US"' 'DNComponentRev(CRef(dn), 3)' --attr "dn=$dn"
expect 'string "US"' 'DNComponentRev(CRef(dn), 1, "DC")' --attr "dn=$dn"
expect 'string "Italian"' 'Switch(Eq(city, "London"), "English", Eq(city, "Rome"), "Italian", Eq(city, "Paris"), "French", True, Error("Unknown city"))' --attr city=Rome
expect 'reference "cn=boss"' 'Switch(IsPresent(directManager), directManager, IsPresent(skiplevelManager), skiplevelManager)' --ref skiplevelManager=cn=boss
expect 'binary c3742c381d72344f80e557657b6cbc27' 'ConvertStringToGuid("382c74c3-721d-4f34-80e5-57657b6cbc27")'
expect 'string "382c74c3-721d-4f34-80e5-57657b6cbc27"' 'StringFromGuid(objectGUID)' --bin objectGUID=c3742c381d72344f80e557657b6cbc27
expect 'string "S-1-5-21-1004336348-1177238915-682003330-512"' 'StringFromSid(objectSid)' --bin objectSid=010500000000000515000000dcf4dc3b833d2b46828ba62800020000
expect 'string "CN=Doe\\, John,OU=Users,DC=contoso,DC=com"' 'EscapeDNComponent("CN=" + displayName) + ",OU=Users,DC=contoso,DC=com"' --attr 'displayName=Doe, John'
expect 'string "Test"' 'Trim(" Test ")'
expect 'boolean true' 'CBool(Eq(attrib1, attrib2))' --attr attrib1=x --attr attrib2=x
expect 'string "cn=Joe,dc=contoso,dc=com"' 'CStr(dn)' --ref dn=cn=Joe,dc=contoso,dc=com
pass "documented examples"

# --- typed values and special results -----------------------------------------------
expect 'null' 'Null()'
expect 'null' 'LowerCase(absent)'
expect 'authoritative-null' 'IIF(IsPresent(x), x, AuthoritativeNull)'
expect 'ignore-this-flow' 'IgnoreThisFlow'
expect 'boolean false' 'IsPresent(x)' --attr x=
expect 'binary 000102ff' 'b' --bin b=000102ff
expect 'datetime 2024-03-01T12:30:00Z' 't' --time t=2024-03-01T12:30:00Z
expect 'datetime 2024-03-01T11:30:00.500000Z' 't' --time 't=2024-03-01 12:30:00.5 +01:00'
expect 'boolean true' 'flag' --bool flag=TRUE
expect 'integer -5' -5
expect 'integer 42' - <<<'CNum("4" +
  "2")'
expect 'string "Ada Lovelace"' 'ProperCase(givenName + " " + sn)' --attr=givenName=ADA -a sn=lovelace
out=$("$CTL" expr eval 'Guid()') || fail "Guid()"
echo "$out" | grep -qE '^string "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"$' || fail "Guid(): $out"
out=$("$CTL" expr eval 'RandomNum(1, 6)') || fail "RandomNum"
echo "$out" | grep -qE '^integer [1-6]$' || fail "RandomNum(1, 6): $out"
out=$("$CTL" expr eval 'Now()') || fail "Now()"
echo "$out" | grep -qE '^datetime [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z$' || fail "Now(): $out"
pass "typed values, special results, stdin, negative literals, volatile functions"

# --- multi-valued attributes: repeat --attr -----------------------------------------
expect 'string "smtp:a@x"
string "smtp:b@x"' 'LowerCase(proxyAddresses)' --attr proxyAddresses=SMTP:A@X --attr proxyAddresses=smtp:B@x
expect 'integer 3' 'Count(x)' -a x=1 -a x=2 -a x=3
expect 'string "SMTP:a@x"
string "smtp:b@x"' 'Where($a, proxyAddresses, NotEquals(InStr($a, "SIP:"), 1))' -a proxyAddresses=SMTP:a@x -a proxyAddresses=SIP:a@x -a proxyAddresses=smtp:b@x
expect 'string "4255550100"
string "4255550199"' 'Select($item, otherPhone, Replace($item, "-", ""))' -a otherPhone=425-555-0100 -a otherPhone=425-555-0199
expect 'string "john.doe@contoso.com"' 'Mid(Item(proxyAddresses, Contains(proxyAddresses, "SMTP:")), 6)' -a proxyAddresses=smtp:jd@contoso.com -a proxyAddresses=SMTP:john.doe@contoso.com
pass "multi-valued attributes"

# --- -o json, as a global flag and as the subcommand's ------------------------------
expect '{"type":"string","values":["SMTP:john.doe@contoso.com","smtp:jd@contoso.com"]}' -o json 'Split("SMTP:john.doe@contoso.com,smtp:jd@contoso.com", ",")'
out=$("$CTL" -o json expr eval 'Count(x)' --attr x=a --attr x=b) || fail "global -o json"
[ "$out" = '{"type":"integer","values":[2]}' ] || fail "global -o json: $out"
expect '{"type":"null","values":[]}' 'Null' --output=json
expect '{"type":"authoritative-null","values":[]}' 'AuthoritativeNull' -o json
expect '{"type":"binary","values":["0a0b"]}' 'b' --bin b=0a0b -o json
expect '{"type":"datetime","values":["2001-04-01T00:00:00Z"]}' 'DateAdd(m, 3, CDate("2001-01-01"))' -o json
expect '{"type":"boolean","values":[true,false]}' 'Select($f, f, $f)' --bool f=true --bool f=false -o json
expect '{"type":"string","values":["a\"b\r\n"]}' '"a\"b" + CRLF' -o json
pass "-o json"

# --- errors --------------------------------------------------------------------------
expect_error 1 "<expression>:1:9: argument 2 of Left must be an integer, got a string
  Left(x, \"3\")
          ^" 'Left(x, "3")'
expect_error 1 "<expression>:1:1: unknown function 'Random' (did you mean 'RandomNum'?)
  Random(0,999)
  ^" 'Random(0,999)'
expect_error 1 "<expression>:2:13: expected ')' after the arguments of Left, found '4'
  	Left(sn, 3 4))
  	           ^" "Concatenate(givenName,
	Left(sn, 3 4))"
expect_error 1 "<expression>:1:11: argument 1 of LowerCase must be a string, got an integer
  LowerCase(n)
            ^" 'LowerCase(n)' --int n=5
expect_error 3 "<expression>:1:1: CDate cannot convert 'next tuesday' to a datetime
  CDate(x)
  ^" 'CDate(x)' --attr 'x=next tuesday'
expect_error 3 "<expression>:1:103: Unknown city
  Switch(Eq(city, \"London\"), \"English\", Eq(city, \"Rome\"), \"Italian\", Eq(city, \"Paris\"), \"French\", True, Error(\"Unknown city\"))
                                                                                                        ^" 'Switch(Eq(city, "London"), "English", Eq(city, "Rome"), "Italian", Eq(city, "Paris"), "French", True, Error("Unknown city"))' --attr city=Oslo
expect_error 3 "<expression>:1:22: Item index 4 is out of range (1 to 2)
  Item(proxyAddresses, 4)
                       ^" 'Item(proxyAddresses, 4)' -a proxyAddresses=a -a proxyAddresses=b
expect_error 1 "<expression>:1:1: the expression gives an integer, expected a string
  Len(x)
  ^" 'Len(x)' --want string -a x=abc
pass "compile errors (exit 1) and run-time errors (exit 3) with line, column and caret"

expect_error 2 "loomctl expr eval: --int 'n=five': 'five' is not an integer" 'n' --int n=five
expect_error 2 "loomctl expr eval: --attr 'noequals': expected NAME=VALUE" 'x' --attr noequals
expect_error 2 "loomctl expr eval: attribute 'x' is given as a string and as an integer" 'x' --attr x=a --int x=1
expect_error 2 "loomctl expr eval: --bin 'b=xyz': 'xyz' is not hexadecimal bytes (such as 0a0b)" 'b' --bin b=xyz
expect_error 2 "loomctl expr eval: unknown option '--frob' (see loomctl expr --help)" 'x' --frob
expect_error 2 "loomctl expr eval: more than one expression ('Left(x,' and '1)'); quote the expression" 'Left(x,' '1)'
expect_error 2 "loomctl expr eval: expected an EXPRESSION (see loomctl expr --help)"
expect_error 2 "loomctl expr eval: bad --output 'yaml': expected text or json" 'x' -o yaml
out=$("$CTL" expr --help) || fail "expr --help"
echo "$out" | head -n1 | grep -q "^usage: loomctl expr eval EXPRESSION" || fail "expr --help: $out"
echo "$out" | grep -q "examples:" || fail "expr --help has no examples: $out"
"$CTL" --help | grep -q "^  expr " || fail "loomctl --help does not list expr"
pass "usage errors (exit 2) and --help"
