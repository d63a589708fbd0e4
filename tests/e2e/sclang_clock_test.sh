#!/usr/bin/env bash
# Three real sclang members playing on TuttiClocks (the quark in sc/).
#
# One JACK dummy server, a hub, three scsynth servers with the plugin, solo
# at boot. Three sclang processes (tests/e2e/sclang/clock_member.scd), each
# on its own server's proxy port, started at different moments, each joins
# with Tutti:join and plays its own Pbind on a TuttiClock with quant: 4:
#   anna   first; 10 s after her first note she proposes 150 bpm with
#          TuttiClock:tempo_ (she joins as a conductor);
#   bruno  once anna plays;
#   carla  late: after the tempo change, into the running session.
# The test fails unless:
#   - every note of every part, its session time read from the journals,
#     lies on the session's quarter-beat grid (target 0.1 ms; the gate has
#     room for a loaded machine, see TOL_MS below; the timeline
#     the session started with, from anna's status, then every agreed change
#     as the journals hold it); every part's first note is on a bar line and
#     every bar line while it plays has a note of it (tests/e2e/sclang/grid.py);
#   - the tempo change starts on a bar line, and anna's and bruno's clocks
#     switched exactly at that beat (each prints its clock's beat there);
#   - tutti verify finds the three journals identical;
#   - every sclang printed TUTTI-OK and no ERROR; no scsynth printed FAILURE
#     or `late`.
# TUTTI_SC_CLOCK_SECONDS (default 30) sets how long anna plays; the others
# scale with it (the documented longer run: 300).
# Skips (exit 0) only when sclang, scsynth, JACK or the plugin are not there.
set -u
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in sclang scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR (TUTTI_BUILD_PLUGIN=OFF?)"; exit 0; }

PLAY=${TUTTI_SC_CLOCK_SECONDS:-30}
export JACK_DEFAULT_SERVER=$(jack_name) JACK_NO_START_SERVER=1
SC_PORTS=()
trap 'cleanup; for p in "${SC_PORTS[@]}"; do rm -f "/dev/shm/SuperColliderServer_$p"; done; rm -f /dev/shm/*"$JACK_DEFAULT_SERVER"* 2>/dev/null' EXIT

free_port() {
    PYTHONPATH="$TOP/examples/osc" python3 -c "import tuttilocal; print(tuttilocal.free_port())"
}
status_json() { "$TUTTI" status --proxy "$1" --json 2>/dev/null | tail -1; }
json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null; }

# wait_line FILE PATTERN SECONDS PID: until FILE has a line matching PATTERN
wait_line() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ------------------------------------------------------------------ servers
start_jackd -r -d dummy -r 48000 -p 256
# A hub as on the internet: each member joins with its invitation (Tutti:join
# invite:), anna's a conductor's, over an encrypted link
for m in anna bruno carla; do
    role=performer
    [ $m = anna ] && role=conductor
    "$TUTTI" invite --keys "$WORK/hubkeys" --role $role --out "$WORK/$m.invite" >/dev/null ||
        fail "tutti invite failed"
done
start_hub --horizon 150 --bpm 120 --session clock --duration $((PLAY + 120)) --keys "$WORK/hubkeys"

for m in anna bruno carla; do
    port=$(free_port)
    [ -n "$port" ] || fail "no free port"
    SC_PORTS+=("$port")
    eval "PORT_$m=$port"
    start "sc_$m" env TUTTI_PROXY_PORT=0 TUTTI_CACHE="$WORK/cache-$m" \
        scsynth -u "$port" -B 127.0.0.1 -R 0 -l 32 -i 2 -o 2 -b 32768 -a 8192 -c 32768 \
        -U "$PLUGIN_DIR:/usr/lib/SuperCollider/plugins"
done
for m in anna bruno carla; do
    for i in $(seq 300); do
        p=$(sed -n 's/.*tutti: proxy listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/sc_$m.out" "$WORK/sc_$m.log" | head -1)
        [ -n "$p" ] && break
        kill -0 "$(eval echo \$PID_sc_$m)" 2>/dev/null || { tail -20 "$WORK/sc_$m.out"; fail "scsynth $m exited"; }
        sleep 0.1
    done
    [ -n "$p" ] || fail "scsynth $m never said where its proxy listens"
    eval "PROXY_$m=$p"
done
ok "three servers: anna (proxy $PROXY_anna), bruno (proxy $PROXY_bruno), carla (proxy $PROXY_carla)"

# ------------------------------------------------------------------ members
mkdir -p "$WORK/home" "$WORK/xdg"
chmod 700 "$WORK/xdg"
cat >"$WORK/sclang_conf.yaml" <<EOF
includePaths:
    - $TOP/sc
excludePaths:
    - /usr/share/SuperCollider/Extensions
    - /usr/local/share/SuperCollider/Extensions
postInlineWarnings: false
EOF

# member NAME DEF "DURS" SECONDS [PROPOSE_AFTER BPM]: one sclang in the background
member() {
    start "sclang_$1" env HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/xdg" QT_QPA_PLATFORM=offscreen \
        QTWEBENGINE_DISABLE_SANDBOX=1 TUTTI_SC_PROXY="$(eval echo \$PROXY_$1)" TUTTI_SC_HUB="$HUB_URL" \
        TUTTI_SC_NAME="$1" TUTTI_SC_JOURNAL="$WORK/$1.journal" TUTTI_SC_DEF="$2" TUTTI_SC_DURS="$3" \
        TUTTI_SC_PLAY="$4" TUTTI_SC_PROPOSE_AFTER="${5:-0}" TUTTI_SC_PROPOSE_BPM="${6:-0}" \
        TUTTI_SC_ROLE="${7:-performer}" TUTTI_SC_INVITE="$WORK/$1.invite" \
        sclang -l "$WORK/sclang_conf.yaml" "$HERE/sclang/clock_member.scd"
}

member anna tuttiClockA "1 0.5 0.5 1 1" "$PLAY" 10 150 conductor
wait_line "$WORK/sclang_anna.out" '^TUTTI-PLAYING' 40 "$PID_sclang_anna" ||
    { tail -30 "$WORK/sclang_anna.out"; fail "anna never played"; }
START=$(status_json "$PROXY_anna")
echo "$START" >"$WORK/start.json"
[ "$(json_get "$START" mode)" = session ] || fail "anna's server is not in the session: $START"
ok "anna plays: $(grep '^TUTTI-PLAYING' "$WORK/sclang_anna.out")"

member bruno tuttiClockB "0.25 0.25 0.5 1 0.75 0.25 1" $((PLAY - 6))
wait_line "$WORK/sclang_bruno.out" '^TUTTI-PLAYING' 40 "$PID_sclang_bruno" ||
    { tail -30 "$WORK/sclang_bruno.out"; fail "bruno never played"; }
ok "bruno plays"

# carla: after anna's change has taken effect
wait_line "$WORK/sclang_anna.out" '^TUTTI-SWITCH.* bpm 150' 40 "$PID_sclang_anna" ||
    { tail -30 "$WORK/sclang_anna.out"; fail "anna's clock never switched to 150 bpm"; }
sleep 2
member carla tuttiClockC "0.5 0.5 0.5 0.5 2" $((PLAY / 2 - 4))

for m in anna bruno carla; do
    wait "$(eval echo \$PID_sclang_$m)"
    eval "RC_$m=$?"
done

for m in anna bruno carla; do
    "$TUTTI" leave --proxy "$(eval echo \$PROXY_$m)" >/dev/null 2>&1
done

# ------------------------------------------------------------------ checks
for m in anna bruno carla; do
    echo "--- sclang $m"
    sed -n '/Welcome to SuperCollider/,$p' "$WORK/sclang_$m.out" | grep -E '^(ok|NOT OK|TUTTI-|WARNING|ERROR)' | cut -c1-200
    grep -q '^TUTTI-OK$' "$WORK/sclang_$m.out" && [ "$(eval echo \$RC_$m)" = 0 ] ||
        fail "sclang $m did not print TUTTI-OK and exit 0 (exit status $(eval echo \$RC_$m))"
    bad=$(grep -E 'ERROR|FAILURE|CALL STACK|^NOT OK' "$WORK/sclang_$m.out")
    [ -z "$bad" ] || fail "sclang $m printed errors: $(echo "$bad" | head -5)"
done
ok "three sclang members joined, played on TuttiClocks and left; no ERROR"

for m in anna bruno carla; do
    f=$(grep -c FAILURE "$WORK/sc_$m.out")
    l=$(grep -c '^late ' "$WORK/sc_$m.out")
    [ "$f" = 0 ] || fail "scsynth $m printed FAILURE: $(grep FAILURE "$WORK/sc_$m.out" | sort | uniq -c | head -5)"
    [ "$l" = 0 ] || fail "scsynth $m played $l bundles late"
done
ok "no scsynth printed FAILURE or late"
for m in anna bruno carla; do
    grep -q "joined session \"clock\" as member [0-9]* (.*link encrypted)" "$WORK/sc_$m.out" ||
        fail "$m's server did not join with its invitation over an encrypted link: $(grep 'tutti: join' "$WORK/sc_$m.out")"
done
ok "every member joined with its invitation (the hub admits no one else), links encrypted"

"$TUTTI" verify "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" >"$WORK/verify.out" 2>&1 ||
    fail "the journals differ: $(cat "$WORK/verify.out")"
ok "tutti verify: $(head -1 "$WORK/verify.out")"

TL=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"t0_ns": int(d["timeline_t0_ns"]), "beat0": float(d["timeline_beat0"]), "bpm": float(d["bpm"]), "quantum": float(d["quantum"])}))' "$START") ||
    fail "no timeline in anna's status: $START"
# The target is 0.1 ms (issue 17), and a quiet machine holds it (the notes'
# worst is about 0.01 ms). On two loaded cores the members' clock estimates
# move by more than that: one CI run had one note of 164 at 0.138 ms just
# after a late join (an estimate stepping between a note's stamping and the
# feed's repeat of the timeline); two runs beside a sanitizer test run and
# three Sonic Pi servers had every note 0.50-0.56 ms early at all three
# members alike (the three estimates of the hub's clock sharing a bias: the
# loopback's round trips, stretched by the load, were lopsided), and passed
# again at 0.01 ms once the load was gone. The gate has room for that, and
# every note over the target is printed.
TOL_MS=1.0
python3 "$HERE/sclang/grid.py" --timeline "$TL" --part anna=tuttiClockA --part bruno=tuttiClockB \
    --part carla=tuttiClockC --grid 0.25 --tolerance-ms "$TOL_MS" --target-ms 0.1 \
    "$WORK/anna.journal" "$WORK/bruno.journal" "$WORK/carla.journal" >"$WORK/grid.out" 2>&1
grid_rc=$?
grep -v '^{' "$WORK/grid.out"
[ $grid_rc = 0 ] || fail "notes off the session's grid (see above)"
ok "every note of the three parts on the session's grid within $TOL_MS ms (over the 0.1 ms target: $(python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(sum(p.get("over_target", 0) for p in r["parts"].values()))' "$WORK/grid.out")); bars coincide"

# The change: where each clock switched, against the change in the journals.
python3 - "$WORK/grid.out" "$WORK/sclang_anna.out" "$WORK/sclang_bruno.out" "$WORK/sclang_carla.out" <<'PY' || fail "a clock did not switch at the change's beat"
import json, re, sys
rep = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
ch = [c for c in rep["changes"] if c["bpm"] == 150]
if len(ch) != 1:
    print("the journals hold %d changes to 150 bpm, not 1" % len(ch)); sys.exit(1)
beat, bad = ch[0]["beat"], 0
for path, name in zip(sys.argv[2:4], ("anna", "bruno")):
    sw = [l.split() for l in open(path, errors="replace") if l.startswith("TUTTI-SWITCH") and l.rstrip().endswith("bpm 150.0")]
    if len(sw) != 1:
        print("%s: %d switches to 150 bpm, not 1" % (name, len(sw))); bad += 1; continue
    f = dict(zip(sw[0][1::2], sw[0][2::2]))
    print("%s's clock switched at its beat %s (the change's beat %s; journals: %g, agreed %.1f ms ahead)"
          % (name, f["clock_beat"], f["beat"], beat, ch[0]["lead_ms"]))
    if f["clock_beat"] == "now" or abs(float(f["clock_beat"]) - beat) > 1e-9 or abs(float(f["beat"]) - beat) > 1e-9:
        bad += 1
c = rep["parts"].get("carla", {})
print("carla joined late: first note at beat %s, %d notes, worst %s ms off the grid"
      % (c.get("first_beat"), c.get("notes", 0), c.get("worst_ms")))
sys.exit(1 if bad else 0)
PY
ok "anna's and bruno's clocks switched to 150 bpm at the agreed beat; carla, late, on the grid"
