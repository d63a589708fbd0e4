#!/usr/bin/env bash
# A rehearsal carried into the gig (tutti hub --auto-horizon --rehearsal FILE):
# the first session writes what its automatic horizon settled on to FILE; the
# second starts from that L, holds it until it has measured as long as the
# rehearsal had, then lets it go and writes its own figures. A file that is
# not a rehearsal is refused with a message that says where and why.
set -u
. "$(dirname "$0")/lib.sh"

REH="$WORK/rehearsal.txt"
num() { awk -v k="$1" '$1 == k { print $2 }' "$REH"; }
# The hub's stdout is a file, flushed once it says it is open (after its
# address file appears): wait for that line before reading what came before.
wait_open() {
    local i
    for i in $(seq 200); do
        grep -q "is open at" "$WORK/hub.out" && return 0
        sleep 0.05
    done
    fail "the hub never said it is open: $(cat "$WORK/hub.out")"
}

start_hub --auto-horizon --rehearsal "$REH"
wait_open
grep -q "no rehearsal in $REH yet" "$WORK/hub.out" || fail "the hub should say there is no rehearsal yet: $(cat "$WORK/hub.out")"
start_trio 1000 200
for m in anna bruno carla; do wait_ok "$m"; done
stop_hub
[ -s "$REH" ] || fail "the rehearsal left no $REH"
l1=$(num L_ms)
m1=$(num measured_s)
awk -v l="$l1" -v m="$m1" 'BEGIN { exit !(l >= 5 && m >= 2) }' ||
    fail "the rehearsal's figures are not plausible: $(cat "$REH")"
ok "the rehearsal wrote L $l1 ms after measuring for $m1 s"
mv "$WORK/hub.out" "$WORK/hub1.out"
mv "$WORK/hub.log" "$WORK/hub1.log"

# The gig: twice as long, so that the hold ends while it plays.
start_hub --auto-horizon --rehearsal "$REH"
wait_open
grep -q "starting from the rehearsal's L of $l1 ms" "$WORK/hub.out" ||
    fail "the hub did not start from the rehearsal: $(cat "$WORK/hub.out")"
grep -q "(L $(printf '%.0f' "$l1") ms, automatic" "$WORK/hub.out" ||
    fail "the session did not open at the rehearsal's L: $(cat "$WORK/hub.out")"
start_trio 2000 200
for m in anna bruno carla; do wait_ok "$m"; done
stop_hub
grep -q "as long as the rehearsal: its L ($l1 ms) is no longer held" "$WORK/hub.log" ||
    fail "the rehearsal's L was never let go: $(grep 'tutti hub' "$WORK/hub.log" | tail -5)"
# no lowering below it while it was held
awk -v f="$l1" '/no longer held/ { exit } /L lowered to/ { for (i = 1; i <= NF; i++) if ($i == "to") { v = $(i + 1) + 0; if (v < f) { print; bad = 1 } } } END { exit bad }' \
    "$WORK/hub.log" || fail "L went below the rehearsal's while it was held"
m2=$(num measured_s)
awk -v a="$m1" -v b="$m2" 'BEGIN { exit !(b > a) }' ||
    fail "the gig did not write its own figures (measured $m2 s, the rehearsal $m1 s)"
ok "the gig held L $l1 ms until it had measured as long, then wrote its own ($(num L_ms) ms after $m2 s)"
for j in anna bruno carla; do
    [ "$(user_events "$WORK/$j.journal")" = 6000 ] || fail "$j did not hear all 6000 events"
done
"$TUTTI" verify "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" >/dev/null ||
    fail "the gig's journals differ"
ok "the gig is coherent"

# Not a rehearsal: refused (status 2), the line and the reason named.
printf 'L_ms 12x\n' >"$WORK/bad.txt"
"$TUTTI" hub --auto-horizon --rehearsal "$WORK/bad.txt" >"$WORK/bad.out" 2>&1
[ $? = 2 ] || fail "a bad rehearsal file should exit with status 2"
grep -q "line 1: L_ms must be a number" "$WORK/bad.out" || fail "unclear: $(cat "$WORK/bad.out")"
"$TUTTI" hub --rehearsal "$REH" >"$WORK/bad.out" 2>&1
[ $? = 2 ] || fail "--rehearsal without --auto-horizon should exit with status 2"
ok "a bad rehearsal file is refused: $(cat "$WORK/bad.out")"
