#!/usr/bin/env bash
# Two cities, one tutti session, Ableton Link in each: the Link bridge's
# acceptance run, and plain Link over the same impaired path beside it.
#
#   bash tests/link/cities.sh build/tutti build/tests/linkpeer \
#        [--delays "0 50 100 200"] [--seconds 40] [--plain] [--no-bridge]
#        [--second-bridge] [--bridge-opt OPTION]... [--plugin-a PLUGIN_DIR]
#        [--trace DIR] [--changes N]
#
# For each one-way delay D (ms), with 10 % of it as jitter (uniform, per
# packet, no reordering):
#  bridge  network namespaces the script creates: a hub's (the hub and two
#          `tutti netsim` relays, D each way), city A and city B (each a LAN
#          of its own, joined to the hub's namespace by a veth pair). In each
#          city a Link test peer (tests/link/linkpeer.cpp) runs first, on its
#          own tempo, then `tutti link` joins the session. At a quarter of
#          the run city A's peer changes the tempo to 133 (as a musician in
#          an app), at a half city B's peer starts the transport, at
#          five-eighths city B's peer changes it to 96 and at three quarters
#          city A's peer stops the transport. With --second-bridge a second
#          `tutti link` joins in city A a few seconds after the first: it
#          must stand by (one bridge per Link session).
#          With --plugin-a, city A's bridge is not `tutti link` but a
#          scsynth with the plugin (from PLUGIN_DIR) that joins the session
#          with the Link bridge on (TUTTI_LINK=1, docs/plugin.md), as
#          conductor; its JACK server (dummy driver) runs outside the
#          namespaces, and the plugin's status (`tutti status --json`, in
#          city A) is printed before the end as "statusA: {...}", then what
#          its feed says of the bridge, also after `/cmd tutti link off` and
#          `on` (tests/link/feedlink.py), as "feedA: {...}".
#          With --trace DIR, both bridges (`tutti link --trace`, or city A's
#          scsynth with TUTTI_LINK_TRACE) write their step traces, and
#          tests/link/decompose.py splits the two peers' difference into the members' clock errors, the bridges' hold on
#          Link and Link's own part ("decompose: {...}"); the peers' logs and
#          the traces are kept in DIR.
#          With --changes N (and --trace DIR) the run is a reliability
#          measurement instead: after lock the two cities' apps change the
#          tempo N times in turn, one change every 4 s (a bar and L), and
#          tests/link/changes.py counts the changes that never reached the
#          other city, with what each bridge's trace shows of them
#          ("changes: {...}").
#  plain   (--plain) two namespaces joined by tests/link/tapbridge.py, an
#          Ethernet cable of D each way; a Link peer in each, no tutti.
# The peers sample beat and phase at the same host instants (both read
# CLOCK_MONOTONIC_RAW, one clock for every namespace); tests/link/analyze.py
# compares them from when both bridges said they were locked (their status:
# 6 s after their member's clock locked) and, as agree_s / p99_from_agree_ms,
# from the first second the apps agreed. One JSON line per run on stdout, the
# last a summary.
# Needs root (namespaces). Multicast stays inside the namespaces it made.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
LINKPEER=${2:?usage: bash $0 path/to/tutti path/to/linkpeer [options]}
shift 2
DELAYS="0 50 100 200"
SECS=40
PLAIN=0
BRIDGE=1
SECOND=0
BRIDGE_OPTS=()
PLUGIN_A=
TRACE=
CHANGES=0
while [ $# -gt 0 ]; do
    case $1 in
    --delays) DELAYS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --plain) PLAIN=1; shift ;;
    --no-bridge) BRIDGE=0; shift ;;
    --second-bridge) SECOND=1; shift ;;
    --bridge-opt) BRIDGE_OPTS+=("$2"); shift 2 ;;
    --plugin-a) PLUGIN_A=$2; shift 2 ;;
    --trace) TRACE=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    --changes) CHANGES=$2; shift 2 ;;
    *) echo "cities.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "cities.sh: needs root (network namespaces)"; exit 77; }
[ "$CHANGES" = 0 ] || [ -n "$TRACE" ] || fail "--changes needs --trace DIR"
# the changes need time: the bridges lock in about 8 s
[ "$CHANGES" = 0 ] || SECS=$((CHANGES * 4 + 12))
# from starting the bridges to the first app change
LEAD=$((SECS / 4))
[ "$CHANGES" = 0 ] || LEAD=10
[ -x "$LINKPEER" ] || fail "no Link test peer at $LINKPEER"
# city A's scsynth (--plugin-a): its UDP port is in city A's namespace, but
# the shared memory scsynth names after it is the machine's: a port of this
# run's own
SCPORT=$((30000 + $$ % 20000))
[ -z "$PLUGIN_A" ] || [ -f "$PLUGIN_A/TuttiProxy.so" ] || fail "no plugin in $PLUGIN_A"

P=t19$$
NSS=()
ns_cleanup() {
    local ns
    for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
trap 'cleanup; ns_cleanup; rm -f /dev/shm/SuperColliderServer_$SCPORT' EXIT

ns_add() {
    ip netns add "$1" || fail "cannot create network namespace $1"
    NSS+=("$1")
    ip -n "$1" link set lo up
}

raw_us() { python3 -c 'import time; print(int(time.clock_gettime(time.CLOCK_MONOTONIC_RAW) * 1e6))'; }

# start_peer NAME NS BPM: a Link test peer in NS on its own tempo, its stdin
# a FIFO on fd slot NAME. The two cities' peers start on different tempos,
# so that they cannot seem to agree before a bridge (or plain Link) has
# brought them together: started within a millisecond of each other on one
# tempo, they would.
start_peer() {
    local name=$1 ns=$2 bpm=$3
    rm -f "$WORK/$name.in"
    mkfifo "$WORK/$name.in"
    exec {fd}<>"$WORK/$name.in"
    eval "FD_$name=$fd"
    ip netns exec "$ns" "$LINKPEER" --quantum 4 --bpm "$bpm" --duration $((SECS + 60)) \
        <"$WORK/$name.in" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PIDS+=($!)
    eval "PID_$name=$!"
}
say() { local fd; eval "fd=\$FD_$1"; echo "$2" >&"$fd"; }

stop_all() {
    local p jack=${PID_jackd:-}
    # JACK's server last, once its clients are gone: a server that does not
    # end cleanly keeps its entry in JACK's registry (8 for the machine)
    for p in "${PIDS[@]}"; do [ "$p" = "$jack" ] || kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do [ "$p" = "$jack" ] || wait "$p" 2>/dev/null; done
    if [ -n "$jack" ]; then
        kill -TERM "$jack" 2>/dev/null
        wait "$jack" 2>/dev/null
        PID_jackd=
    fi
    PIDS=()
    exec {FD_peerA}>&- {FD_peerB}>&-
    ns_cleanup
    NSS=()
}

jitter_of() { python3 -c "print($1 / 10)"; }

# each `tutti link`'s last status line (a scsynth bridge's is not in its log)
print_bridges() {
    local x
    for x in A B A2; do
        [ -z "$PLUGIN_A" ] || [ "$x" != A ] || continue
        [ -f "$WORK/bridge$x.out" ] && tail -n 1 "$WORK/bridge$x.out" | sed "s/^/bridge$x: /"
    done
}

run_bridge() {
    local d=$1 j h=${P}h a=${P}a b=${P}b t0 tc1 tc2
    rm -f "$WORK"/bridge*.out "$WORK"/peer*.out
    j=$(jitter_of "$d")
    local ta=() tb=()
    if [ -n "$TRACE" ]; then
        ta=(--trace "$TRACE/traceA-$d.txt")
        tb=(--trace "$TRACE/traceB-$d.txt")
    fi
    ns_add "$h"; ns_add "$a"; ns_add "$b"
    ip link add "${P}ha" netns "$h" type veth peer name "${P}ah" netns "$a" || fail "veth"
    ip link add "${P}hb" netns "$h" type veth peer name "${P}bh" netns "$b" || fail "veth"
    ip -n "$h" addr add 10.19.1.1/24 dev "${P}ha"; ip -n "$h" link set "${P}ha" up
    ip -n "$a" addr add 10.19.1.2/24 dev "${P}ah"; ip -n "$a" link set "${P}ah" up
    ip -n "$h" addr add 10.19.2.1/24 dev "${P}hb"; ip -n "$h" link set "${P}hb" up
    ip -n "$b" addr add 10.19.2.2/24 dev "${P}bh"; ip -n "$b" link set "${P}bh" up
    # L covers the path (events; a tempo change lands on the first bar line
    # at least L ahead of when the hub orders it)
    start hub ip netns exec "$h" "$TUTTI" hub --listen tcp://127.0.0.1:7770 --session cities \
        --horizon $((d + d / 5 + 40)) --duration $((SECS + 60)) --quiet
    start relayA ip netns exec "$h" "$TUTTI" netsim --listen 10.19.1.1:7001 \
        --to tcp://127.0.0.1:7770 --delay "$d" --jitter "$j" --jitter-model independent \
        --seed 1 --duration $((SECS + 60)) --quiet
    start relayB ip netns exec "$h" "$TUTTI" netsim --listen 10.19.2.1:7001 \
        --to tcp://127.0.0.1:7770 --delay "$d" --jitter "$j" --jitter-model independent \
        --seed 2 --duration $((SECS + 60)) --quiet
    start_peer peerA "$a" 120
    start_peer peerB "$b" 110
    sleep 1
    t0=$(raw_us)
    if [ -n "$PLUGIN_A" ]; then
        # a JACK server for the city's scsynth (no network of its own);
        # stop_all ends it with the rest
        start_jackd -r -d dummy -r 48000 -p 256
        start bridgeA ip netns exec "$a" env TUTTI_LINK=1 TUTTI_HUB=tcp://10.19.1.1:7001 \
            TUTTI_SESSION=cities TUTTI_NAME=cityA TUTTI_ROLE=conductor \
            ${TRACE:+TUTTI_LINK_TRACE="$TRACE/traceA-$d.txt"} \
            scsynth -u "$SCPORT" -b 32768 -a 4112 -c 32768 -U "$PLUGIN_A:/usr/lib/SuperCollider/plugins"
    else
        start bridgeA ip netns exec "$a" "$TUTTI" link tcp://10.19.1.1:7001 cities cityA \
            --duration $((SECS + 30)) "${BRIDGE_OPTS[@]}" "${ta[@]}"
    fi
    start bridgeB ip netns exec "$b" "$TUTTI" link tcp://10.19.2.1:7001 cities cityB \
        --duration $((SECS + 30)) "${BRIDGE_OPTS[@]}" "${tb[@]}"
    if [ "$SECOND" = 1 ]; then
        sleep 3
        start bridgeA2 ip netns exec "$a" "$TUTTI" link tcp://10.19.1.1:7001 cities cityA2 \
            --duration $((SECS + 27))
        sleep $((LEAD - 3))
    else
        sleep "$LEAD"
    fi
    if [ "$CHANGES" != 0 ]; then
        changes_run "$d"
        return
    fi
    tc1=$(raw_us); say peerA "tempo 133"
    sleep $((SECS / 4)); ts1=$(raw_us); say peerB "start"
    sleep $((SECS / 8)); tc2=$(raw_us); say peerB "tempo 96"
    sleep $((SECS / 8)); ts2=$(raw_us); say peerA "stop"
    sleep $((SECS / 4 + 2))
    if [ -n "$PLUGIN_A" ]; then
        ip netns exec "$a" "$TUTTI" status --proxy 57121 --json >"$WORK/statusA.json" \
            2>"$WORK/statusA.log" || cat "$WORK/statusA.log"
        # the feed's /tutti/link, and the setting turned off and on again
        ip netns exec "$a" python3 "$HERE/feedlink.py" 57121 >"$WORK/feedA.json" \
            2>"$WORK/feedA.log" || cat "$WORK/feedA.log"
    fi
    stop_all
    # lock: from when both bridges said they were locked (their clock settled;
    # a scsynth bridge's own statement is not in its log: city B's stands)
    local lock_after
    lock_after=$(python3 - "$WORK/bridgeA.out" "$WORK/bridgeB.out" "$PLUGIN_A" <<'PY'
import json, sys
at = 0
for path in sys.argv[1:3]:
    if path.endswith("bridgeA.out") and sys.argv[3]:
        continue
    try:
        r = json.loads(open(path).read().strip().splitlines()[-1])
    except Exception:
        r = {}
    at = max(at, r.get("locked_at_us", 0) if r.get("locked") else 1 << 62)
print(at)
PY
)
    python3 "$HERE/analyze.py" "$WORK/peerA.out" "$WORK/peerB.out" --from-us "$t0" \
        --lock-after-us "$lock_after" \
        --switch-after-us "$tc1" --switch-before-us "$ts1" \
        --switch2-after-us "$tc2" --switch2-before-us "$ts2" \
        --transport "$ts1:$tc2" --transport "$ts2:$((ts2 + SECS * 250000))" \
        --label "bridge delay ${d}ms jitter ${j}ms" >"$WORK/r.json" ||
        fail "analysis failed"
    cat "$WORK/r.json"
    if [ -n "$TRACE" ]; then
        cp "$WORK/peerA.out" "$TRACE/peerA-$d.out"
        cp "$WORK/peerB.out" "$TRACE/peerB-$d.out"
        [ -s "$TRACE/traceA-$d.txt" ] && [ -s "$TRACE/traceB-$d.txt" ] &&
            python3 "$HERE/decompose.py" "$WORK/peerA.out" "$WORK/peerB.out" \
                "$TRACE/traceA-$d.txt" "$TRACE/traceB-$d.txt" --from-us "$t0" \
                --lock-after-us "$lock_after" \
                --label "delay ${d}ms" | sed "s/^/decompose: /"
    fi
    if [ -n "$PLUGIN_A" ]; then
        [ -s "$WORK/statusA.json" ] && sed "s/^/statusA: /" "$WORK/statusA.json"
        [ -s "$WORK/feedA.json" ] && sed "s/^/feedA: /" "$WORK/feedA.json"
        grep -E "FAILURE|late [0-9]|link" "$WORK/bridgeA.out" "$WORK/bridgeA.log" |
            sed "s/^/scsynthA: /"
    fi
    print_bridges
}

# --changes: from 10 s after the bridges started (LEAD; locked by then),
# the apps change the tempo in turn every 4 s, each to a tempo not yet used
changes_run() {
    local d=$1 i
    for i in $(seq "$CHANGES"); do
        if [ $((i % 2)) = 1 ]; then
            say peerA "tempo $((90 + i))"
        else
            say peerB "tempo $((90 + i))"
        fi
        sleep 4
    done
    stop_all
    cp "$WORK/peerA.out" "$TRACE/peerA-$d.out"
    cp "$WORK/peerB.out" "$TRACE/peerB-$d.out"
    python3 "$HERE/changes.py" "$WORK/peerA.out" "$WORK/peerB.out" "$TRACE" --delay "$d" |
        sed "s/^{/changes: {/"
    print_bridges
}

run_plain() {
    local d=$1 j a=${P}pa b=${P}pb t0
    j=$(jitter_of "$d")
    ns_add "$a"; ns_add "$b"
    start tap python3 "$HERE/tapbridge.py" "${P}ta" "${P}tb" --ns-a "$a" --ns-b "$b" \
        --delay "$d" --jitter "$j" --duration $((SECS + 30))
    for i in $(seq 100); do grep -q ready "$WORK/tap.out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$WORK/tap.out" || { cat "$WORK/tap.log"; fail "tapbridge did not start"; }
    ip -n "$a" addr add 10.19.9.1/24 dev "${P}ta"; ip -n "$a" link set "${P}ta" up
    ip -n "$b" addr add 10.19.9.2/24 dev "${P}tb"; ip -n "$b" link set "${P}tb" up
    t0=$(raw_us)
    start_peer peerA "$a" 120
    start_peer peerB "$b" 110
    sleep $((SECS / 2)); tc1=$(raw_us); say peerA "tempo 133"
    sleep $((SECS / 2 + 2))
    stop_all
    python3 "$HERE/analyze.py" "$WORK/peerA.out" "$WORK/peerB.out" --from-us "$t0" \
        --switch-after-us "$tc1" --label "plain Link delay ${d}ms jitter ${j}ms" ||
        fail "analysis failed"
}

for d in $DELAYS; do
    [ "$BRIDGE" = 1 ] && run_bridge "$d"
    [ "$PLAIN" = 1 ] && run_plain "$d"
done
exit 0
