#!/usr/bin/env bash
# Connections cut mid-performance: every TCP connection to the hub is torn
# down four times while three members play (ss -K, which needs root and a
# kernel with socket-destroy support; skipped otherwise). Each member must
# redial, resume where it was, and end with a complete journal identical to
# the others. Twelve cut connections a run: NNG 1.5.2's own redial, which
# the member no longer relies on, never came back for about one in 70, and
# after that NNG reported no further loss (the member's silence watchdog
# finds those).
set -u
. "$(dirname "$0")/lib.sh"

N=3000
RATE=500
start_hub
port=${HUB_URL##*:}
start_trio $N $RATE
wait_joined 3
sleep 1.5
ss -K dst 127.0.0.1 dport = ":$port" >/dev/null 2>&1
sleep 0.5
if ! grep -q 'lost the connection' "$WORK/anna.log"; then
    echo "skip: this system does not let ss -K cut connections (needs root and INET_DIAG_DESTROY)"
    exit 0
fi
ok "first cut: every member lost its connection"
# three more, from the hub's side and from the members' side in turn
for side in src dst src; do
    sleep 0.8
    if [ $side = src ]; then
        ss -K src 127.0.0.1 sport = ":$port" >/dev/null 2>&1
    else
        ss -K dst 127.0.0.1 dport = ":$port" >/dev/null 2>&1
    fi
done
for m in anna bruno carla; do wait_ok "$m"; done
stop_hub
for m in anna bruno carla; do
    # a lost connection NNG reports, or one the member found silent
    cuts=$(grep -c 'lost the connection\|heard nothing from the hub' "$WORK/$m.log")
    [ "$cuts" -ge 4 ] || fail "$m lost its connection $cuts times, expected 4"
    grep -q 'removed\|rejoin' "$WORK/$m.log" && fail "$m had to rejoin instead of resuming"
    n=$(user_events "$WORK/$m.journal")
    [ "$n" = $((3 * N)) ] || fail "$m heard $n test events, not $((3 * N))"
done
ok "every member resumed after four cuts and heard all $((3 * N)) events"
"$TUTTI" verify "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" \
    >"$WORK/verify.out" || { cat "$WORK/verify.out"; fail "the journals differ"; }
ok "$(cat "$WORK/verify.out")"
late=$(grep -ho '"late":[0-9]*' "$WORK"/anna.out "$WORK"/bruno.out "$WORK"/carla.out | awk -F: '{ s += $2 } END { print s + 0 }')
ok "late deliveries around the cuts: $late"
