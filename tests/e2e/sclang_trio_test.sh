#!/usr/bin/env bash
# Three members, each a real sclang following docs/supercollider.md (issue 15,
# acceptance): three scsynth servers with the plugin boot solo; each sclang
# (tests/e2e/sclang/member.scd) connects to its proxy with the session's
# options, builds synthdefs, a buffer, a control bus, a group, an LFO writing
# the bus and a drone whose freq is mapped to it, then joins from sclang
# (/cmd tutti join) and plays notes with the buffer every 0.25 s:
#   - A and B join at the start; C joins LATE seconds later (6 s here;
#     TUTTI_TRIO_LATE=20 runs the issue's full 20 s);
#   - B leaves at 3 s, plays solo, and joins again (same name) at 7 s;
#   - A also runs a second Server object on scsynth's own port (client id
#     31, as the docs say), connected while the session plays, which records
#     A's server with s.record; B's and C's servers are recorded with
#     examples/osc/record.py.
# Fails unless:
#   - every sclang printed TUTTI-OK: each note's /n_go and /n_end came with
#     the id sclang gave it, /s_get of the drone and /b_info by its own ids;
#   - every server's recording holds every part's drone (its own frequency,
#     reached only through the mapped bus) once all three are in, and A's
#     recording holds nothing of B's drone while B plays solo;
#   - C's sclang also records with s.record through its proxy once it has
#     joined: the file (on C's machine) holds all three parts, and the
#     recording synth runs on C's server alone;
#   - every server's tree holds every part's group, LFO and drone then, and
#     A's tree holds nothing of B's part while B is solo;
#   - no scsynth printed FAILURE or late; every member's server check says
#     identical;
#   - tutti verify finds the journals (B's second in B.journal.2) coherent,
#     the servers' records included.
# Skips when sclang, scsynth, JACK or the plugin are not there.
set -u
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in sclang scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR"; exit 0; }
export JACK_DEFAULT_SERVER=$(jack_name) JACK_NO_START_SERVER=1
SC_PORTS=()
trap 'cleanup; for p in "${SC_PORTS[@]}"; do rm -f "/dev/shm/SuperColliderServer_$p"; done; rm -f /dev/shm/*"$JACK_DEFAULT_SERVER"* 2>/dev/null' EXIT
free_port() { PYTHONPATH="$TOP/examples/osc" python3 -c "import tuttilocal; print(tuttilocal.free_port())"; }
status_json() { "$TUTTI" status --proxy "$1" --json 2>/dev/null | tail -1; }
json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null; }

LATE=${TUTTI_TRIO_LATE:-6}
LEAVE=3
REJOIN=7
REC_AT=1.5
END=$(( (LATE > REJOIN ? LATE : REJOIN) + 6 ))
declare -A FREQ=([A]=330 [B]=550 [C]=770)
declare -A JOIN_AT=([A]=0 [B]=0 [C]=$LATE)

start_jackd -r -d dummy -r 48000 -p 256
# L 250 ms, clients 0.5 s ahead: see sclang_session_test.sh
start_hub --horizon 250
for m in A B C; do
    port=$(free_port); SC_PORTS+=("$port"); eval "PORT_$m=$port"
    start "sc$m" env TUTTI_PROXY_PORT=0 TUTTI_CACHE="$WORK/cache-$m" \
        scsynth -u "$port" -B 127.0.0.1 -R 0 -l 32 -i 2 -o 2 -b 32768 -a 8192 -c 32768 \
        -n 16384 -d 8192 -U "$PLUGIN_DIR:/usr/lib/SuperCollider/plugins"
done
for m in A B C; do
    for i in $(seq 300); do
        p=$(sed -n 's/.*tutti: proxy listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/sc$m.out" "$WORK/sc$m.log" | head -1)
        [ -n "$p" ] && break
        sleep 0.1
    done
    [ -n "$p" ] || fail "scsynth $m never said where its proxy listens"
    eval "PROXY_$m=$p"
done

mkdir -p "$WORK/home" "$WORK/xdg"; chmod 700 "$WORK/xdg"
for m in A B C; do
    extra=()
    [ $m = B ] && extra=(TUTTI_SC_LEAVE_AT=$LEAVE TUTTI_SC_REJOIN_AT=$REJOIN)
    [ $m = A ] && extra=(TUTTI_SC_REC_PORT=$PORT_A TUTTI_SC_REC_PATH="$WORK/rec-A.wav" TUTTI_SC_REC_AT=$REC_AT)
    [ $m = C ] && extra=(TUTTI_SC_PROXY_REC_PATH="$WORK/rec-Cproxy.wav" TUTTI_SC_PROXY_REC_AT=$((LATE + 2)))
    start "sclang$m" env HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/xdg" QT_QPA_PLATFORM=offscreen \
        QTWEBENGINE_DISABLE_SANDBOX=1 TUTTI_SC_PROXY="$(eval echo \$PROXY_$m)" TUTTI_SC_HUB="$HUB_URL" \
        TUTTI_SC_NAME="$m" TUTTI_SC_JOURNAL="$WORK/$m.journal" TUTTI_SC_FREQ=${FREQ[$m]} \
        TUTTI_SC_T0_FILE="$WORK/t0" TUTTI_SC_JOIN_AT=${JOIN_AT[$m]} TUTTI_SC_END_AT=$END \
        "${extra[@]}" sclang "$HERE/sclang/member.scd"
done
for m in A B C; do
    for i in $(seq 1200); do grep -q '^TUTTI-BUILT' "$WORK/sclang$m.out" && break; sleep 0.1; done
    grep -q '^TUTTI-BUILT' "$WORK/sclang$m.out" || { tail -20 "$WORK/sclang$m.out"; fail "sclang $m did not build its part solo"; }
done
ok "three sclang clients built their parts while their servers were solo"

# the session starts in 5 s (room for the recorders to start on a loaded
# machine); B's and C's servers are recorded from then on
T0=$(python3 -c 'import time; print("%.3f" % (time.time() + 5))')
for m in B C; do
    start "rec$m" python3 "$TOP/examples/osc/record.py" --port "$(eval echo \$PORT_$m)" \
        --seconds $((END + 1)) --out "$WORK/rec-$m.wav" \
        --at "$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[1]) + 2208988800))' "$T0")"
done
start trees python3 "$HERE/sclang/watch_trees.py" --out "$WORK/trees.jsonl" --seconds $((END + 30)) \
    --period 0.5 A="$PORT_A" B="$PORT_B" C="$PORT_C"
echo "$T0" >"$WORK/t0.tmp" && mv "$WORK/t0.tmp" "$WORK/t0"

for m in A B C; do
    for i in $(seq $(( (END + 60) * 10 ))); do grep -q '^TUTTI-\(OK\|NOT-OK\)' "$WORK/sclang$m.out" && break; sleep 0.1; done
done
for m in A B C; do
    [ $m = A ] || wait "$(eval echo \$PID_rec$m)"
    st=$(status_json "$(eval echo \$PROXY_$m)"); eval "STATUS_$m=\$st"
done
touch "$WORK/trees.jsonl.stop"; wait "$PID_trees"
for m in A B C; do
    echo "--- sclang $m"
    grep -E '^(ok|NOT OK|TUTTI)' "$WORK/sclang$m.out"
done
for m in A B C; do
    grep -q '^TUTTI-OK$' "$WORK/sclang$m.out" || fail "sclang $m did not print TUTTI-OK"
done
ok "every sclang got its replies with its own ids (notes' /n_go and /n_end, /s_get, /b_info, /sync)"

T() { sed -n "s/^TUTTI-T $2 //p" "$WORK/sclang$1.out" | head -1; }
TIMES=$(printf '{"t0": %s, "A_rec": "%s", "Cproxy_rec": "%s", "B_left": "%s", "B_rejoined": "%s", "C_joined": "%s", "end": %s}' \
    "$T0" "$(T A recording)" "$(T C proxy_recording)" "$(T B left)" "$(T B rejoined)" "$(T C joined)" "$END")
echo "times: $TIMES"
python3 - "$WORK" "$TIMES" "$TOP/examples/osc" <<'PY' || fail "not every part sounded on every server (see above)"
import json, math, sys
work, times = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from wavstat import read_wav
freq = {"A": 330.0, "B": 550.0, "C": 770.0}
t0 = times["t0"]
allin = (max(float(times["B_rejoined"]), float(times["C_joined"])) + 2.0, t0 + times["end"] - 0.5)
solo = (float(times["B_left"]) + 1.0, t0 + 7 - 0.3)   # REJOIN = 7
starts = {"A": float(times["A_rec"]) - 0.3, "B": t0, "C": t0,
          "Cproxy": float(times["Cproxy_rec"]) - 0.3}
for m in "BC":
    meta = [json.loads(l) for l in open("%s/rec%s.log" % (work, m)) if l.startswith("{")]
    if meta:
        starts[m] = meta[-1]["start"] - 2208988800

def level(x, rate, f):
    """Amplitude of the sine at f in x (Goertzel over the whole window)."""
    w = 2 * math.pi * f / rate
    c, s1, s2 = 2 * math.cos(w), 0.0, 0.0
    for v in x:
        s1, s2 = v + c * s1 - s2, s1
    p = s1 * s1 + s2 * s2 - c * s1 * s2
    return 2 * math.sqrt(max(p, 0.0)) / len(x)

ok = True
for m in ("A", "B", "C", "Cproxy"):
    rate, ch, data = read_wav("%s/rec-%s.wav" % (work, m))
    x = data[0]
    def cut(a, b):
        i, j = int((a - starts[m]) * rate), int((b - starts[m]) * rate)
        return x[max(i, 0):max(min(j, len(x)), 0)]
    seg = cut(*allin)
    if len(seg) < rate:
        print("server %s: the recording holds %.2f s of the time all three played" % (m, len(seg) / rate))
        ok = False
        continue
    lv = {p: level(seg, rate, f) for p, f in freq.items()}
    ref = level(seg, rate, 440.0)
    print("%s, %.1f s with all three: drones A %.4f, B %.4f, C %.4f (440 Hz: %.4f)" % (
        {"Cproxy": "C's s.record through its proxy"}.get(m, "server %s" % m), len(seg) / rate, lv["A"], lv["B"], lv["C"], ref))
    ok &= all(v > 0.02 for v in lv.values()) and ref < 0.005
    if m in "AB" and solo[1] - solo[0] > 1:
        seg = cut(*solo)
        b, a = level(seg, rate, freq["B"]), level(seg, rate, freq["A"])
        print("server %s, %.1f s while B played solo: drone B %.4f, drone A %.4f" % (m, len(seg) / rate, b, a))
        ok &= (b < 0.005 and a > 0.02) if m == "A" else (b > 0.02 and a < 0.005)
sys.exit(0 if ok else 1)
PY
ok "every server's recording holds all three drones once all are in; while B was solo, A's held none of B's, and B's none of the others'"

python3 - "$WORK/trees.jsonl" "$TIMES" <<'PY' || fail "the servers' trees did not hold every part (see above)"
import json, re, sys
snaps = [json.loads(l) for l in open(sys.argv[1])]
times = json.loads(sys.argv[2])
t0 = times["t0"]
allin = (max(float(times["B_rejoined"]), float(times["C_joined"])) + 2.0, t0 + times["end"] - 0.5)
solo = (float(times["B_left"]) + 1.0, t0 + 7 - 0.3)
ok = True
for srv in "ABC":
    best = None
    for s in snaps:
        if s["server"] != srv or not allin[0] <= s["t"] <= allin[1]:
            continue
        have = {m for m in "ABC" for k in ("drone", "lfo")
                if any(n[1] and re.fullmatch(r"%s%s\.p\d+" % (k, m), n[1]) for n in s["nodes"])}
        if best is None or len(have) > len(best):
            best = have
    print("server %s with all three in: LFO and drone of %s" % (srv, sorted(best or [])))
    ok &= best == {"A", "B", "C"}
    rec = {s["server"] for s in snaps
           if any(n[1] and re.fullmatch(r"temp__\d+\.p\d+", n[1]) for n in s["nodes"])}
    print("server %s: %s" % (srv, "runs C's recording synth" if srv in rec else "runs no recording synth of a part"))
    ok &= (srv in rec) == (srv == "C")
    if srv in "AC":
        b = [s for s in snaps if s["server"] == srv and solo[0] <= s["t"] <= solo[1]
             and any(n[1] and re.match(r"(drone|lfo|ping)B\.p", n[1]) for n in s["nodes"])]
        print("server %s while B was solo: %d snapshots with B's nodes" % (srv, len(b)))
        ok &= not b
sys.exit(0 if ok else 1)
PY
ok "every server's tree held every part's LFO and drone; while B was solo nothing of B's was elsewhere; C's s.record ran on C's server alone"
[ "$(json_get "$STATUS_C" recorded_here)" -gt 0 ] 2>/dev/null ||
    fail "C's proxy ran no recording message here (recorded_here $(json_get "$STATUS_C" recorded_here))"

for m in A B C; do
    f=$(grep -c FAILURE "$WORK/sc$m.out"); l=$(grep -c '^late ' "$WORK/sc$m.out")
    [ "$f" = 0 ] || fail "scsynth $m printed FAILURE: $(grep FAILURE "$WORK/sc$m.out" | sort | uniq -c | head -5)"
    [ "$l" = 0 ] || { echo "member $m: $(eval echo "\$STATUS_$m")"; fail "scsynth $m printed late $l times"; }
    st=$(eval echo "\$STATUS_$m")
    [ "$(json_get "$st" server_check)" = identical ] ||
        fail "member $m's server check: $(json_get "$st" server_check) ($(json_get "$st" check_last))"
done
ok "no scsynth printed FAILURE or late; every member's server check: identical"

j=("$WORK"/A.journal "$WORK"/B.journal "$WORK"/B.journal.2 "$WORK"/C.journal)
for f in "${j[@]}"; do [ -s "$f" ] || fail "no journal $f"; done
# B's first journal ends when it leaves, before C joins: compared with A's;
# B's second (B.journal.2, its join again) with A's and C's.
for set in "A.journal B.journal" "A.journal B.journal.2 C.journal"; do
    files=(); for f in $set; do files+=("$WORK/$f"); done
    "$TUTTI" verify "${files[@]}" >"$WORK/verify.out" 2>&1 ||
        { cat "$WORK/verify.out"; fail "tutti verify $set: not coherent"; }
    echo "tutti verify $set:"; sed 's/^/    /' "$WORK/verify.out"
    grep -q "servers: identical" "$WORK/verify.out" || fail "tutti verify $set did not find the servers' records identical"
done
ok "tutti verify: the journals coherent and the servers' records identical"

# A client of B's own port that makes a node in A's part's ids, outside A's
# part (what a Server object there without client id 31 does): B's log
# names it, the part and the group.
PART_A=$(json_get "$STATUS_A" part)
NODE=$(( (PART_A << 26) + 777 ))
PYTHONPATH="$TOP/examples/osc" python3 -c '
import sys, tuttiosc as osc
c = osc.Udp(int(sys.argv[1])); c.send(osc.message("/g_new", int(sys.argv[2]), 1, 0)); c.close()' "$PORT_B" "$NODE"
for i in $(seq 100); do
    grep -q "tutti: node $NODE (part $PART_A's ids) was made in group 0, outside the part" "$WORK/scB.out" "$WORK/scB.log" && break
    sleep 0.1
done
grep -h "tutti: node $NODE" "$WORK/scB.out" "$WORK/scB.log" | head -1
grep -q "tutti: node $NODE (part $PART_A's ids) was made in group 0, outside the part" "$WORK/scB.out" "$WORK/scB.log" ||
    fail "B's log did not name the node made in A's part's ids through its own port"
ok "a node made in A's part's ids through B's own port is named in B's log"
