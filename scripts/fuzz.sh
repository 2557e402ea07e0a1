#!/usr/bin/env bash
# fuzz.sh [--time SECONDS] [--build DIR] [TARGET...] - run Loom's libFuzzer
# targets (fuzz/, docs/testing.md).
#
# Builds with clang and -DLOOM_FUZZ=ON (ASan+UBSan+libFuzzer) into its own
# build directory (default build-fuzz/), seeds each target's corpus from
# ../shared/testdata (CSV, LDIF, DSML, the XPath examples, the function
# reference) and the repository's config/ and tests/ data, then runs each
# target (all when none is named) for SECONDS (default 60), one job at a
# time. The corpus grows in BUILD/corpus/TARGET and is reused by the next
# run. A crash, leak, timeout or UBSan report stops that target; its input
# is kept under fuzz/crashes/TARGET/ (once fixed, move it to
# fuzz/regress/TARGET/ so that ctest's fuzz.TARGET replays it).
# Prints one line per target: execs, seconds, crashes; exits 1 when a
# target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
secs=60
bdir=build-fuzz
targets=()
while [ $# -gt 0 ]; do
	case "$1" in
	--time) secs=${2:?--time needs SECONDS}; shift 2 ;;
	--time=*) secs=${1#--time=}; shift ;;
	--build) bdir=${2:?--build needs DIR}; shift 2 ;;
	-h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
case "$secs" in ''|*[!0-9]*) echo "fuzz.sh: --time '$secs': expected a number of seconds" >&2; exit 2 ;; esac
all=$(sed -n 's/^set(LOOM_FUZZ_TARGETS \(.*\)/\1/p; /^  config_/p' fuzz/CMakeLists.txt | tr -d ')' | tr -s ' \n' ' ')
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$all"
for t in "${targets[@]}"; do
	case " $all " in *" $t "*) ;; *) echo "fuzz.sh: unknown target '$t' (targets: $all)" >&2; exit 2 ;; esac
done
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 2; }

testdata=${LOOM_TESTDATA_DIR:-$src/../shared/testdata}
[ -d "$testdata" ] || testdata=/work/shared/testdata
export TMPDIR=${TMPDIR:-/tmp}

echo "fuzz.sh: building ${targets[*]} in $bdir (clang, libFuzzer, ASan+UBSan)" >&2
# -Werror is the gcc build's gate (scripts/build.sh); clang's other warnings do not stop fuzzing.
CC=clang cmake -S . -B "$bdir" -DLOOM_FUZZ=ON -DLOOM_WERROR=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$bdir" -j"${LOOM_FUZZ_BUILD_JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}") >"$bdir/fuzz-build.log" 2>&1 ||
	{ tail -30 "$bdir/fuzz-build.log" >&2; echo "fuzz.sh: build failed ($bdir/fuzz-build.log)" >&2; exit 2; }

# seed DIR PREFIX FILE...: copies each file into DIR, its bytes after PREFIX
# (a printf format: the target's option byte).
seed() {
	local dir=$1 prefix=$2; shift 2
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		{ printf "$prefix"; head -c 65536 "$f"; } >"$dir/$(printf '%s' "$f" | md5sum | cut -c1-16)"
	done
}
# snippets DIR: one seed per line of stdin.
snippets() {
	local dir=$1 n=0 line
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		n=$((n + 1))
		printf '%s' "$line" >"$dir/snippet-$n"
	done
}

make_seeds() {
	local t=$1 d=$2
	rm -rf "$d"
	mkdir -p "$d"
	case $t in
	csv)
		mapfile -t f < <(find "$testdata/csv" "$src/config/samples" -type f \( -name '*.csv' -o -name '*.txt' \))
		seed "$d" '\000' "${f[@]}"
		seed "$d" '\004' "${f[@]:0:20}"
		mapfile -t f < <(find "$testdata/csv" -type f -name '*.tsv')
		seed "$d" '\002' "${f[@]}" ;;
	ldif)
		mapfile -t f < <(find "$testdata/ldif" -type f ! -name '*.md')
		seed "$d" '\000' "${f[@]}" ;;
	dsml)
		mapfile -t f < <(find "$testdata/dsml" -type f -name '*.xml' | head -400)
		seed "$d" '' "${f[@]}" ;;
	avp)
		printf '\000dn: uid=jdoe,ou=people\nuid: jdoe\ncn: Jane Doe\nmail: jane@example.com\n\nuid: x\nphoto:: AAECAw==\n\n' >"$d/a"
		printf '\001uid=jdoe\ncn=Jane\nmember==Y249YSxkYz1l\n\n' >"$d/b"
		printf '\003uid|jdoe\ncn|Jane\n\n' >"$d/c" ;;
	fixed)
		# 3 columns: string 10, integer 6, datetime 19; then lines.
		printf '\002\000\012\000\000\006\001\000\023\003jdoe      0000422024-03-01T12:00:00\nmmeyers       -7 2024-03-01\n' >"$d/a"
		printf '\003\201\005\000\000\004\002\000\010\023\000\002\000abcd y  20240301   1\n' >"$d/b" ;;
	json)
		seed "$d" '' $(find "$testdata/csv/csv-spectrum/json" "$testdata/csv/rfc4180" -name '*.json')
		printf '{"type":"object","anchor":"1","attrs":{"cn":["a",1,true,{"bin":"AAE="},{"time":"2024-01-01T00:00:00Z"}]}}' >"$d/ext" ;;
	ext)
		printf '\000{"type":"object","anchor":"jdoe","attrs":{"cn":"Jane","n":7,"ok":true,"d":{"time":"2024-03-01T12:00:00Z"},"b":{"bin":"AAEC"},"m":{"ref":"uid=x"}}}\n{"type":"log","level":"info","message":"hi"}\n{"type":"end","watermark":"5"}\n' >"$d/full"
		printf '\001{"type":"object","change":"update","anchor":"jdoe","deltas":[{"name":"cn","op":"replace","values":["J"]},{"name":"mail","op":"add","values":["j@x"]}]}\n{"type":"object","change":"delete","anchor":"x"}\n{"type":"error","anchor":"y","message":"bad"}\n' >"$d/delta"
		printf '\002{"type":"object","dn":"uid=a,ou=p","new_dn":"uid=b,ou=p","change":"add","object_type":"group","attrs":{"member":[{"ref":"uid=a"}]}}\n' >"$d/dn" ;;
	expr)
		grep -oh '`[^`]*`' "$testdata"/functions/*.md "$src/docs/expressions.md" | grep '(' | tr -d '`' | snippets "$d"
		grep -h 'expression:\|value:\|condition:' -r "$src/config" | sed 's/^[^:]*: *//; s/^"\(.*\)"$/\1/' | snippets "$d" ;;
	xpath)
		grep -oh '`/[^`]*`' "$testdata"/xpath/*.md "$src/docs/xpath.md" | tr -d '`' | snippets "$d"
		grep -h 'filter:' -r "$src/config" "$src/tests/integration" | sed 's/^[^:]*: *//; s/^["'"'"']\(.*\)["'"'"']$/\1/' | snippets "$d" ;;
	proto)
		FUZZ_PROTO_SEEDS=$d "$bdir/fuzz/fuzz_proto" 2>/dev/null ;;
	config_agent)
		seed "$d" '' "$src"/config/agents/*.yaml "$src"/config/examples/{file-fixed,ldap-openldap,ext-agent,sql-postgresql}.yaml ;;
	config_sync)
		seed "$d" '' "$src"/config/sync/*.yaml ;;
	config_deploy)
		seed "$d" '' "$src"/config/loom.yaml "$src"/config/examples/tcp-curve.yaml ;;
	config_policy)
		seed "$d" '' "$src"/config/policy/*.yaml "$src"/config/examples/sspr.yaml ;;
	config_workflow)
		seed "$d" '' "$src"/config/examples/workflows/*.yaml ;;
	esac
	# The committed seed subset too.
	[ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$d"/ 2>/dev/null || true
}

failed=0
total_execs=0
total_secs=0
printf '%-16s %12s %8s %8s %8s\n' target execs seconds exec/s crashes
for t in "${targets[@]}"; do
	seeds=$bdir/seeds/$t
	corpus=$bdir/corpus/$t
	crashes=$src/fuzz/crashes/$t
	mkdir -p "$corpus" "$crashes"
	make_seeds "$t" "$seeds"
	dirs=("$corpus" "$seeds")
	[ -d "fuzz/regress/$t" ] && dirs+=("fuzz/regress/$t")
	before=$(find "$crashes" -type f | wc -l)
	log=$bdir/fuzz-$t.log
	start=$(date +%s)
	set +e
	"$bdir/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$crashes/" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	set -e
	end=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	execs=${execs:-0}
	after=$(find "$crashes" -type f | wc -l)
	new=$((after - before))
	if [ "$rc" -ne 0 ] && [ "$new" -eq 0 ]; then
		new="rc=$rc"
	fi
	printf '%-16s %12s %8s %8s %8s\n' "$t" "$execs" "$((end - start))" "$((execs / (end - start > 0 ? end - start : 1)))" "$new"
	if [ "$rc" -ne 0 ]; then
		failed=1
		grep -m3 -E 'ERROR: |runtime error|property broken' "$log" | sed "s/^/    $t: /" || true
		echo "    $t: log $log, input under $crashes/" >&2
	fi
	total_execs=$((total_execs + execs))
	total_secs=$((total_secs + end - start))
done
printf '%-16s %12s %8s\n' total "$total_execs" "$total_secs"
exit $failed
