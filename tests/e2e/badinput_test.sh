#!/usr/bin/env bash
# Hostile input while a session plays: garbage bytes, wrong protocols, broken
# SP framing, malformed and truncated tutti frames, forged events and an
# intruder that joins and falls silent. The hub and the members must keep
# running, stay coherent and complete, and the hub must log what it dropped.
set -u
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || fail "python3 is needed for the hostile peer"
N=2000
RATE=250
start_hub --session tutti
start_trio $N $RATE
# Attack once everyone has joined and is playing.
wait_joined 3
sleep 0.5
port=${HUB_URL##*:}
timeout 60 python3 "$(dirname "$0")/badpeer.py" 127.0.0.1 "$port" tutti >"$WORK/badpeer.out" 2>&1 \
    || { cat "$WORK/badpeer.out"; fail "the hostile peer itself failed"; }
grep -q '^done' "$WORK/badpeer.out" || fail "the hostile peer did not finish"
ok "hostile peer: $(grep -c '^sent' "$WORK/badpeer.out") attacks sent"

for p in hub anna bruno carla; do
    kill -0 "$(eval echo "\$PID_$p")" 2>/dev/null || wait_ok "$p"
done
ok "the hub and all members survived the attacks"

for m in anna bruno carla; do wait_ok "$m"; done
stop_hub

for m in anna bruno carla; do
    n=$(user_events "$WORK/$m.journal")
    [ "$n" = $((3 * N)) ] || fail "$m heard $n test events, not $((3 * N))"
    [ "$(origins "$WORK/$m.journal")" = 3 ] || fail "$m heard test events from someone other than the three members"
    grep -q 'forged\|666f72676564' "$WORK/$m.journal" && fail "$m delivered a forged event"
done
"$TUTTI" verify "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" \
    >"$WORK/verify.out" || { cat "$WORK/verify.out"; fail "the journals differ"; }
ok "coherent and complete: $(cat "$WORK/verify.out")"

final=$(tail -1 "$WORK/hub.out")
dropped=$(echo "$final" | grep -o '"dropped_frames":[0-9]*' | cut -d: -f2)
refused=$(echo "$final" | grep -o '"refused":[0-9]*' | cut -d: -f2)
[ "${dropped:-0}" -gt 0 ] || fail "the hub counted no malformed frames: $final"
[ "${refused:-0}" -gt 0 ] || fail "the hub refused no connection: $final"
grep -q 'dropped a malformed frame' "$WORK/hub.log" || fail "the hub did not log the malformed frames"
grep -q 'does not speak the SP protocol\|is neither pair1' "$WORK/hub.log" || fail "the hub did not log the refused connections"
grep -q 'intruder' "$WORK/hub.log" || fail "the intruder's join was not logged"
ok "the hub dropped $dropped malformed frames and refused $refused connections, and logged them"
grep -q '"divergences":0' <<<"$final" || fail "divergences reported: $final"
ok "no divergences"

# The other direction: a member whose "hub" answers with garbage must log the
# drops and give up cleanly when its time is up, not crash.
timeout 60 python3 "$(dirname "$0")/badpeer.py" --hub "$WORK/badhub.port" 4 >"$WORK/badhub.out" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do [ -s "$WORK/badhub.port" ] && break; sleep 0.05; done
[ -s "$WORK/badhub.port" ] || fail "the hostile hub did not start"
run_bounded 60 "$TUTTI" member --hub "tcp://127.0.0.1:$(cat "$WORK/badhub.port")" \
    --name victim --events 0 --timeout 3 --quiet >"$WORK/victim.out" 2>"$WORK/victim.log"
rc=$?
[ "$rc" -lt 128 ] || fail "the member facing a hostile hub crashed or hung (status $rc)"
[ "$rc" = 1 ] || fail "the member should report that it never joined (status $rc)"
grep -q 'dropped a malformed frame\|malformed' "$WORK/victim.log" || fail "the member did not log the garbage it dropped"
grep -q '"ok":false' "$WORK/victim.out" || fail "the member's report is missing"
ok "a member facing a hostile hub logged $(grep -c malformed "$WORK/victim.log") dropped frames and gave up cleanly"
