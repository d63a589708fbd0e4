#!/usr/bin/env bash
# A hub and three member processes on 127.0.0.1, each playing thousands of
# events stamped at random moments. All three journals must be identical and
# complete (every member heard all 3 x N events), and nothing may crash.
set -u
. "$(dirname "$0")/lib.sh"

N=3000
RATE=500
start_hub
start_trio $N $RATE
for m in anna bruno carla; do wait_ok "$m"; done
stop_hub
ok "three members played $N events each and left; the hub stopped cleanly"

for m in anna bruno carla; do
    n=$(user_events "$WORK/$m.journal")
    [ "$n" = $((3 * N)) ] || fail "$m heard $n test events, not $((3 * N))"
    [ "$(origins "$WORK/$m.journal")" = 3 ] || fail "$m did not hear all three members"
    grep -q '"ok":true' "$WORK/$m.out" || fail "$m reports a problem: $(cat "$WORK/$m.out")"
done
ok "every journal holds all $((3 * N)) events from all three members"

"$TUTTI" verify "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" \
    >"$WORK/verify.out" || { cat "$WORK/verify.out"; fail "the journals differ"; }
grep -q '^identical' "$WORK/verify.out" || fail "verify did not say identical"
ok "$(cat "$WORK/verify.out")"

grep -q '"divergences":0' "$WORK/hub.out" || fail "the hub saw divergences: $(tail -1 "$WORK/hub.out")"
late=$(grep -ho '"late":[0-9]*' "$WORK"/*.out | awk -F: '{ s += $2 } END { print s + 0 }')
ok "no divergences; late deliveries in total: $late"
