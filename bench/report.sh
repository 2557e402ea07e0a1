#!/usr/bin/env bash
# bench/report.sh [--quick] [--only NAMES] [--out DIR] : runs every benchmark
# of bench/ and prints ONE table of their figures:
#
#   figure | Loom | limit or peer measured in the same run | ratio | goal | met?
#
# Each benchmark prints machine-readable lines
#   RESULT NAME loom=X peer=Y peer_name=P unit=U goal=G
# (bench_common.c's bench_result(), or echo in the shell benchmarks); this
# script collects them. A goal ">=X" or "<=X" applies to the Loom figure,
# "ratio>=X" to Loom / peer; "-" means the issue sets none (the peer is shown
# for scale). met? is only printed: a slow figure is not a failure; a
# benchmark that broke shows as FAILED with its exit status and log.
#
# The benchmarks (names for --only, comma-separated):
#   bus     loom-bench-bus: small/large msg/s, with and without the tap
#   sync    loom-bench-sync at 100k and 1M objects (end to end, RSS per 1M
#           connector-space objects) with the 50k-member group's one change
#   ldap    bench/ldap/bench_ldap.sh: import vs ldapsearch, export vs ldapadd
#   repl    bench/ldap/bench_repl.sh: slapd -> Loom -> slapd vs syncrepl
#   live    bench/ldap/bench_live.sh: one change's latency vs syncrepl
#   policy  loom-bench-policy: requests/s through loom-workflow (in-process beside)
#   pcns    bench/pcns/bench_pcns.sh: password change latency and losses
#
# --quick runs smaller sizes (a few minutes in all): bus 100k/10k messages,
# sync 20k (group 10k), ldap and repl 20k, live 200 changes, policy 20k
# persons / 5k requests, pcns 1,000 changes. The full run takes a long time
# (sync at 1M alone several minutes and GBs in $TMPDIR).
#
# Outputs go to --out DIR (default $TMPDIR/loom-bench-report.XXXXXX, kept):
# one NAME.out per benchmark, results.txt (the RESULT lines) and table.md.
# Needs a RelWithDebInfo build in LOOM_BUILD_DIR (default ./build).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
export LOOM_SOURCE_DIR=${LOOM_SOURCE_DIR:-$here}
export LOOM_BUILD_DIR=${LOOM_BUILD_DIR:-$here/build}
B=$LOOM_BUILD_DIR/bench

QUICK=
ONLY=bus,sync,ldap,repl,live,policy,pcns
OUT=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1; shift ;;
	--only) ONLY=${2:-}; shift 2 ;;
	--out) OUT=${2:-}; shift 2 ;;
	-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "bench/report.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
for n in ${ONLY//,/ }; do
	case "$n" in bus | sync | ldap | repl | live | policy | pcns) ;;
	*) echo "bench/report.sh: unknown benchmark '$n' in --only (bus, sync, ldap, repl, live, policy, pcns)" >&2; exit 2 ;;
	esac
done
for p in loom-bench-bus loom-bench-sync loom-bench-policy loom-bench-pcns; do
	[ -x "$B/$p" ] || { echo "bench/report.sh: '$B/$p' is not built (scripts/build.sh build)" >&2; exit 2; }
done
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/loom-bench-report.XXXXXX")
else
	mkdir -p "$OUT" || exit 2
fi
: >"$OUT/results.txt"

want() { [[ ",$ONLY," == *",$1,"* ]]; }
# bench NAME COMMAND... : runs one, its output in OUT/NAME.out
bench() {
	local name=$1 rc=0 t0=$SECONDS
	shift
	echo "== $name: $*" >&2
	"$@" >"$OUT/$name.out" 2>&1 || rc=$?
	grep '^RESULT ' "$OUT/$name.out" >>"$OUT/results.txt"
	if [ "$rc" -ne 0 ]; then
		echo "RESULT $name.FAILED loom=$rc peer=- peer_name=- unit=exit-status goal=-" >>"$OUT/results.txt"
		echo "   $name failed (exit $rc): see $OUT/$name.out" >&2
	fi
	echo "   $name: $((SECONDS - t0)) s" >&2
}

if [ -n "$QUICK" ]; then
	want bus && bench bus "$B/loom-bench-bus" --count-small 100000 --count-large 10000 --warmup 5000
	want sync && bench sync-20k "$B/loom-bench-sync" --objects 20000 --group-members 10000
	want ldap && bench ldap bash "$LOOM_SOURCE_DIR/bench/ldap/bench_ldap.sh" 20000
	want repl && bench repl bash "$LOOM_SOURCE_DIR/bench/ldap/bench_repl.sh" 20000
	want live && bench live bash "$LOOM_SOURCE_DIR/bench/ldap/bench_live.sh" 200 50
	want policy && bench policy "$B/loom-bench-policy" --persons 20000 --requests 5000
	want pcns && bench pcns bash "$LOOM_SOURCE_DIR/bench/pcns/bench_pcns.sh" 1000 100
else
	want bus && bench bus "$B/loom-bench-bus" --repeat 3
	want sync && bench sync-100k "$B/loom-bench-sync" --objects 100000 --group-members 50000
	want sync && bench sync-1M "$B/loom-bench-sync" --objects 1000000 --group-members 0
	want ldap && bench ldap bash "$LOOM_SOURCE_DIR/bench/ldap/bench_ldap.sh" 100000
	want repl && bench repl bash "$LOOM_SOURCE_DIR/bench/ldap/bench_repl.sh" 100000
	want live && bench live bash "$LOOM_SOURCE_DIR/bench/ldap/bench_live.sh" 1000 50
	want policy && bench policy "$B/loom-bench-policy"
	want pcns && bench pcns bash "$LOOM_SOURCE_DIR/bench/pcns/bench_pcns.sh" 10000 100
fi

python3 - "$OUT/results.txt" "$OUT/table.md" "${QUICK:+quick}" <<'PY'
import sys, re
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 2 or f[0] != "RESULT":
        continue
    kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
    rows.append((f[1], kv))
def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None
def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("GB",) or abs(v) < 10 and v != int(v):
        return "%.3g %s" % (v, unit)
    return "{:,.0f} {}".format(v, unit) if abs(v) >= 10 else "%g %s" % (v, unit)
out = []
head = ("figure", "Loom", "limit/peer (same run)", "ratio", "goal", "met?")
for name, kv in rows:
    unit = kv.get("unit", "")
    loom, peer = num(kv.get("loom")), num(kv.get("peer"))
    goal = kv.get("goal", "-")
    ratio = loom / peer if loom is not None and peer not in (None, 0) else None
    met = "n/a"
    m = re.match(r"^(ratio)?(>=|<=)([-0-9.e+]+)$", goal)
    if name.endswith(".FAILED"):
        met, goal = "FAILED", "-"
    elif m:
        subject = ratio if m.group(1) else loom
        lim = float(m.group(3))
        if subject is not None:
            met = "yes" if (subject >= lim if m.group(2) == ">=" else subject <= lim) else "NO"
    peer_s = "-" if peer is None else "%s (%s)" % (fmt(peer, unit), kv.get("peer_name", "-"))
    goal_s = goal if goal == "-" else goal.replace("ratio", "Loom/peer ").replace(">=", ">= ").replace("<=", "<= ") + ("" if goal.startswith("ratio") else " " + unit)
    out.append((name, fmt(loom, unit) if not name.endswith(".FAILED") else "exit %s" % kv.get("loom"),
                peer_s, "-" if ratio is None else "%.2f" % ratio, goal_s, met))
w = [max(len(r[i]) for r in out + [head]) for i in range(6)]
def line(r):
    return "  ".join(r[i].ljust(w[i]) if i in (0, 2, 4) else r[i].rjust(w[i]) for i in range(6)).rstrip()
print(line(head))
print("  ".join("-" * w[i] for i in range(6)))
for r in out:
    print(line(r))
with open(sys.argv[2], "w") as f:
    f.write("| " + " | ".join(head) + " |\n|" + "---|" * 6 + "\n")
    for r in out:
        f.write("| " + " | ".join(r) + " |\n")
PY
echo "(outputs in $OUT; load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
