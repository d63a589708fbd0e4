#!/usr/bin/env bash
# Three members reach the hub through `tutti netsim` relays, one relay per
# member: 30 ms each way, 5 ms of normal jitter, 1% loss, and carla's link
# partitioned for 2 s mid-performance. The journals must still be identical
# and complete, every member must finish well, and the relays must show that
# they imposed what they were asked to (losses repaired, the partition begun
# and ended, retransmission timeouts on carla's link).
set -u
. "$(dirname "$0")/lib.sh"

N=1500
RATE=150
# The hub waits 10 s before removing a silent member: longer than the
# partition plus the TCP backoff after it (a 2 s cut costs about 4 s).
start_hub --suspect 10000

seed=1
for m in anna bruno carla; do
    ev=()
    [ "$m" = carla ] && ev=(--event "at 5s partition 2s")
    start "relay_$m" "$TUTTI" netsim --listen 127.0.0.1:0 --to "$HUB_URL" \
        --url-file "$WORK/relay_$m.url" --delay 30 --jitter 5 --dist normal --loss 1 \
        --seed $seed --duration 90 --quiet "${ev[@]}"
    seed=$((seed + 1))
done
for m in anna bruno carla; do
    for i in $(seq 100); do
        [ -s "$WORK/relay_$m.url" ] && break
        kill -0 "$(eval echo "\$PID_relay_$m")" 2>/dev/null ||
            { cat "$WORK/relay_$m.log"; fail "the relay for $m did not start"; }
        sleep 0.05
    done
    [ -s "$WORK/relay_$m.url" ] || fail "the relay for $m never said where it listens"
done
ok "three relays in front of the hub: 30 ms, 5 ms normal jitter, 1% loss each way"

for m in anna bruno carla; do
    start "$m" "$TUTTI" member --hub "$(cat "$WORK/relay_$m.url")" --name "$m" \
        --events $N --rate $RATE --wait-members 3 --expect $((3 * N)) \
        --journal "$WORK/$m.journal" --quiet
done
for m in anna bruno carla; do wait_ok "$m"; done
for m in anna bruno carla; do
    pid=$(eval echo "\$PID_relay_$m")
    kill -0 "$pid" 2>/dev/null || fail "the relay for $m is gone before the end"
    kill -TERM "$pid"
    wait_ok "relay_$m"
done
stop_hub
ok "the members played $N events each through the relays and left; everything stopped cleanly"

for m in anna bruno carla; do
    n=$(user_events "$WORK/$m.journal")
    [ "$n" = $((3 * N)) ] || fail "$m heard $n test events, not $((3 * N))"
    [ "$(origins "$WORK/$m.journal")" = 3 ] || fail "$m did not hear all three members"
    grep -q '"ok":true' "$WORK/$m.out" || fail "$m reports a problem: $(cat "$WORK/$m.out")"
    grep -q '"divergences":0' "$WORK/$m.out" || fail "$m saw divergences: $(cat "$WORK/$m.out")"
    grep -q '"incarnation":1,' "$WORK/$m.out" || fail "$m had to join again: $(cat "$WORK/$m.out")"
done
ok "every member reports ok, one incarnation, no divergence, all $((3 * N)) events"

"$TUTTI" verify "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" \
    >"$WORK/verify.out" || { cat "$WORK/verify.out"; fail "the journals differ"; }
grep -q '^identical' "$WORK/verify.out" || fail "verify did not say identical"
ok "$(cat "$WORK/verify.out")"
grep -q '"divergences":0' "$WORK/hub.out" || fail "the hub saw divergences: $(tail -1 "$WORK/hub.out")"

# What the relays did. Their last stdout line is a JSON summary.
num() { grep -o "\"$2\":[0-9]*" <<<"$1" | head -1 | cut -d: -f2; }
for m in anna bruno carla; do
    j=$(tail -1 "$WORK/relay_$m.out")
    lost=$(grep -o '"lost":[0-9]*' <<<"$j" | awk -F: '{ s += $2 } END { print s + 0 }')
    fast=$(grep -o '"fast":[0-9]*' <<<"$j" | awk -F: '{ s += $2 } END { print s + 0 }')
    [ "$lost" -gt 0 ] || fail "the relay for $m lost nothing at 1% loss: $j"
    [ "$fast" -gt 0 ] || fail "the relay for $m repaired no loss after a round trip: $j"
    [ "$(num "$j" connections)" -ge 1 ] || fail "nobody connected through the relay for $m"
    ok "relay for $m: $lost transmissions lost, $fast repaired a round trip later"
done
j=$(tail -1 "$WORK/relay_carla.out")
grep -q 'partition begins (2.000 s' "$WORK/relay_carla.out" || fail "carla's relay never cut the link"
grep -q 'partition ends' "$WORK/relay_carla.out" || fail "carla's relay never healed the link"
[ "$(num "$j" partitions)" = 1 ] || fail "carla's relay reports no partition: $j"
timeouts=$(grep -o '"timeouts":[0-9]*' <<<"$j" | awk -F: '{ s += $2 } END { print s + 0 }')
[ "$timeouts" -ge 2 ] || fail "the partition cost no retransmission timeouts: $j"
# A partition holds the connection, so TCP reports nothing; carla gives it up
# after 600 ms of silence and resumes on a new one (whose handshake the relay
# holds until the link is back): at most a dial or two more, never a rejoin.
conns=$(num "$j" connections)
[ "$conns" -ge 1 ] && [ "$conns" -le 3 ] || fail "carla connected $conns times: $j"
grep -q 'removed\|rejoin' "$WORK/carla.log" && fail "carla had to rejoin instead of resuming"
for m in anna bruno; do
    grep -q 'partition begins' "$WORK/relay_$m.out" && fail "the relay for $m cut its link too"
done
stall=$(grep -o '"max_delay_ns":[0-9]*' <<<"$j" | cut -d: -f2 | sort -n | tail -1)
[ "$stall" -ge 2000000000 ] || fail "carla's link never stalled for the partition: $j"
ok "carla's link was cut for 2 s: $timeouts retransmission timeouts, longest stall $((stall / 1000000)) ms"
late=$(grep -ho '"late":[0-9]*' "$WORK"/anna.out "$WORK"/bruno.out "$WORK"/carla.out |
    awk -F: '{ s += $2 } END { print s + 0 }')
ok "late deliveries around the partition: $late"

# Wrong settings are usage errors (2) that say what is wrong.
"$TUTTI" netsim --listen 127.0.0.1:0 --to 127.0.0.1:9 --loss 150 >"$WORK/bad.out" 2>&1
[ $? = 2 ] || fail "--loss 150 should exit with status 2"
grep -q -- '--loss must be between 0 and 100%' "$WORK/bad.out" || fail "unclear: $(cat "$WORK/bad.out")"
"$TUTTI" netsim --listen 127.0.0.1:0 --to 127.0.0.1:9 --event "at 5 partition 2s" \
    >"$WORK/bad.out" 2>&1
[ $? = 2 ] || fail "an event without a time unit should exit with status 2"
grep -q 'not a time with a unit' "$WORK/bad.out" || fail "unclear: $(cat "$WORK/bad.out")"
ok "bad settings are refused with status 2"
