#!/usr/bin/env bash
# The evaluation runner's quickest configuration (scripts/eval/evaluate.py
# --smoke): three `tutti member` processes through three `tutti netsim`
# relays (20 +/- 5 ms) play for 5 s; the runner measures the run and writes
# its CSV files (and plots and a report, here into the scratch folder, not
# into docs/). The CSV must be there, with one coherent run in which every
# member ended well, and one row per member.
set -u
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
command -v python3 >/dev/null || fail "python3 is needed"

run_bounded 90 python3 "$TOP/scripts/eval/evaluate.py" --smoke --tutti "$TUTTI" \
    --out "$WORK/eval" --report "$WORK/evaluation.md" --work "$WORK/raw" \
    >"$WORK/eval.out" 2>&1
rc=$?
[ "$rc" = 0 ] || { tail -20 "$WORK/eval.out"; fail "the runner exited with status $rc"; }
ok "the runner finished: $(grep -c '^\[' "$WORK/eval.out") run(s)"

csv=$WORK/eval/runs.csv
[ -s "$csv" ] || fail "no runs.csv"
[ "$(wc -l <"$csv")" = 2 ] || fail "runs.csv should have a header and one run: $(cat "$csv")"
# col NAME: the value of a column of the one run
col() {
    python3 -c 'import csv, sys; print(next(csv.DictReader(open(sys.argv[1])))[sys.argv[2]])' \
        "$csv" "$1"
}
[ "$(col coherent)" = 1 ] || fail "the run is not coherent: $(col verify)"
[ "$(col misordered)" = 0 ] || fail "events out of order: $(col misordered)"
[ "$(col missing)" = 0 ] || fail "events missing: $(col missing)"
[ "$(col mismatched)" = 0 ] || fail "keys with different contents: $(col mismatched)"
[ "$(col members_ok)" = 3 ] || fail "only $(col members_ok) of 3 members ended well"
[ -z "$(col error)" ] || fail "the run failed: $(col error)"
case "$(col verify)" in identical*) ;; *) fail "tutti verify: $(col verify)" ;; esac
[ -n "$(col on_time_min_pct)" ] || fail "no on-time figure"
[ -n "$(col delay_p999_ms)" ] || fail "no delay figure"
[ -n "$(col clock_err_p99_us)" ] || fail "no clock figure"
ok "coherent: $(col verify)"
ok "on time at the worst member $(col on_time_min_pct) %, L $(col L_p50_ms) ms (needed $(col L_min_ms) ms), clock error p99 $(col clock_err_p99_us) us"

[ "$(($(wc -l <"$WORK/eval/members.csv") - 1))" = 3 ] || fail "members.csv should have 3 rows"
[ -s "$WORK/eval/lateness_cdf.csv" ] || fail "no lateness distribution"
[ -s "$WORK/evaluation.md" ] || fail "no report"
grep -q '^## Acceptance' "$WORK/evaluation.md" || fail "the report has no acceptance table"
ok "members.csv, the distributions and the report are there"
