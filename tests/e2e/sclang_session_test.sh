#!/usr/bin/env bash
# A real sclang (SuperCollider 3.13) as one member's client in a session.
#
# One JACK dummy server, a hub, two scsynth servers with the plugin that join
# at boot (members A and B). sclang runs tests/e2e/sclang/session.scd against
# A's proxy port, as a musician would: Server.remote, notify (and its /status
# polling), SynthDef.add (/d_recv), s.sync (/sync inside bundles), Buffer.read
# of a WAV, Bus.audio and Bus.control, Group, Synth (int32 command numbers),
# Synth.newPaused and .run, .map, .set, .get, { }.play, a Pbind with s.latency
# 0.3 for 3 s, /g_queryTree of its own nodes, .release, .free, Buffer.alloc
# with sine1 and .get, Buffer.loadCollection, SendReply from a synth made in
# s.bind, s.freeAll. Meanwhile examples/trio's bass part plays on B's proxy
# port. The test fails unless:
#   - sclang printed TUTTI-OK (every reply it waited for came, with the ids it
#     used) and no ERROR or FAILURE line (what it prints normally is listed
#     below);
#   - the bass client got every reply it expected;
#   - neither scsynth printed FAILURE or late, and neither plugin counted an
#     event late, invalid or not injected;
#   - tutti verify finds the two journals identical;
#   - B's own server tree held A's sclang nodes (its group and synths, by the
#     ids sclang used moved into A's part, synthdefs renamed) while sclang
#     played, side by side with B's part's nodes, and A's held B's.
# A KNOWN-ISSUE line from sclang reports, without failing, a shortcoming the
# session does not handle yet.
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

export JACK_DEFAULT_SERVER=$(jack_name) JACK_NO_START_SERVER=1
OSC="$TOP/examples/osc"
SC_PORTS=()
# JACK's and scsynth's shared memory files are left behind when they are
# stopped; remove ours after lib.sh has stopped the processes.
trap 'cleanup; for p in "${SC_PORTS[@]}"; do rm -f "/dev/shm/SuperColliderServer_$p"; done; rm -f /dev/shm/*"$JACK_DEFAULT_SERVER"* 2>/dev/null' EXIT

free_port() {
    PYTHONPATH="$TOP/examples/osc" python3 -c "import tuttilocal; print(tuttilocal.free_port())"
}

# osc_request PORT REPLY ADDR ARGS...: one message (ints as ints), the first
# reply named REPLY printed as JSON; status 1 if none came within 3 s.
osc_request() {
    PYTHONPATH="$OSC" python3 -c '
import json, sys, time
import tuttiosc as osc
port, want, addr = int(sys.argv[1]), sys.argv[2], sys.argv[3]
args = [int(x) if x.lstrip("-").isdigit() else x for x in sys.argv[4:]]
c = osc.Udp(port)
c.send(osc.message(addr, *args))
end = time.monotonic() + 3
while time.monotonic() < end:
    b = c.recv(end - time.monotonic())
    if b is None:
        break
    a, v = osc.decode(b)
    if a == want:
        print(json.dumps(v)); sys.exit(0)
sys.exit(1)' "$@"
}

status_json() { "$TUTTI" status --proxy "$1" --json 2>/dev/null | tail -1; }
json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null; }

# ------------------------------------------------------------------ servers
start_jackd -r -d dummy -r 48000 -p 256
# L 250 ms, and clients 0.5 s ahead: the test's machine runs two scsynth
# servers, sclang, a client and the hub, often beside other jobs; a process
# that waits its turn for a CPU more than L misses its time however right
# the session is.
start_hub --horizon 250

# -l 32: sclang 3.13 takes the maxLogins in scsynth's /done /notify (the
# proxy passes on scsynth's) into ServerOptions.maxLogins, which throws above
# 32; sclang then never finishes its boot (no default group, every Synth
# fails). scsynth's own default is 64.
for m in A B; do
    port=$(free_port)
    [ -n "$port" ] || fail "no free port"
    SC_PORTS+=("$port")
    eval "PORT_$m=$port"
    start "sc$m" env TUTTI_PROXY_PORT=0 TUTTI_HUB="$HUB_URL" TUTTI_NAME="member$m" \
        TUTTI_SESSION=tutti TUTTI_JOURNAL="$WORK/$m.journal" TUTTI_CACHE="$WORK/cache-$m" \
        scsynth -u "$port" -B 127.0.0.1 -R 0 -l 32 -i 2 -o 2 -b 32768 -a 8192 -c 32768 \
        -U "$PLUGIN_DIR:/usr/lib/SuperCollider/plugins"
done
for m in A B; do
    for i in $(seq 300); do
        p=$(sed -n 's/.*tutti: proxy listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/sc$m.out" "$WORK/sc$m.log" | head -1)
        [ -n "$p" ] && break
        kill -0 "$(eval echo \$PID_sc$m)" 2>/dev/null || { tail -20 "$WORK/sc$m.out"; fail "scsynth $m exited"; }
        sleep 0.1
    done
    [ -n "$p" ] || fail "scsynth $m never said where its proxy listens"
    eval "PROXY_$m=$p"
done
for m in A B; do
    proxy=$(eval echo \$PROXY_$m)
    for i in $(seq 200); do
        st=$(status_json "$proxy")
        [ "$(json_get "$st" mode)" = session ] && [ "$(json_get "$st" members)" = 2 ] && break
        sleep 0.1
    done
    [ "$(json_get "$st" mode)" = session ] && [ "$(json_get "$st" members)" = 2 ] ||
        fail "member $m did not join a session of two: $st"
    eval "PART_$m=$(json_get "$st" part)"
done
ok "two servers joined: A (scsynth $PORT_A, proxy $PROXY_A, part $PART_A), B (scsynth $PORT_B, proxy $PROXY_B, part $PART_B)"

# ------------------------------------------------------------------ clients
# A small WAV for Buffer.read: 0.25 s of a 440 Hz sine, mono, 16 bit, 48 kHz.
python3 - "$WORK/ping.wav" <<'PY'
import math, struct, sys, wave
w = wave.open(sys.argv[1], "wb")
w.setnchannels(1); w.setsampwidth(2); w.setframerate(48000)
w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 48000)))
                       for i in range(12000)))
w.close()
PY

# The trees are watched until the clients are done (the file .stop), at
# most 4 minutes.
start trees python3 "$HERE/sclang/watch_trees.py" --out "$WORK/trees.jsonl" --seconds 240 \
    A="$PORT_A" B="$PORT_B"

mkdir -p "$WORK/home" "$WORK/xdg"
chmod 700 "$WORK/xdg"
# sclang's own files (config, startup file) from a fresh HOME, not the user's.
start sclang sh -c 'exec "$@" 2>&1' sh env HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/xdg" QT_QPA_PLATFORM=offscreen \
    QTWEBENGINE_DISABLE_SANDBOX=1 TUTTI_SC_PROXY="$PROXY_A" TUTTI_SC_WAV="$WORK/ping.wav" \
    TUTTI_SC_PLAY=3 sclang "$HERE/sclang/session.scd"
# The bass starts once sclang talks to its server, not at a fixed time: sclang
# takes 2 s to start on a quiet machine and 20 s or more on a loaded one, and
# the trees must show both parts at once. It plays 8 bars (16 s), longer
# than sclang's part takes after its start (about 12 s).
for i in $(seq 1200); do
    grep -q '^ok: server running' "$WORK/sclang.out" && break
    kill -0 "$PID_sclang" 2>/dev/null || break
    sleep 0.1
done
grep -q '^ok: server running' "$WORK/sclang.out" || { tail -20 "$WORK/sclang.out"; fail "sclang did not reach its server"; }
start_ntp=$(python3 -c 'import time; print("%.6f" % (time.time() + 2208988800 + 3))')
start bass python3 "$TOP/examples/trio/part.py" --part bass --port "$PROXY_B" \
    --start "$start_ntp" --bars 8 --lead 0.5 --samples "$WORK/samples-B"
# sclang ends itself (its script gives up after 90 s); 3 minutes at most
for i in $(seq 1800); do kill -0 "$PID_sclang" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID_sclang" 2>/dev/null && { kill -TERM "$PID_sclang"; fail "sclang did not end within 3 minutes"; }
wait "$PID_sclang"
sc_rc=$?
wait "$PID_bass"; bass_rc=$?
touch "$WORK/trees.jsonl.stop"
wait "$PID_trees"

for m in A B; do
    eval "STATUS_$m=\$(status_json \$PROXY_$m)"
    "$TUTTI" leave --proxy "$(eval echo \$PROXY_$m)" >/dev/null 2>&1
done
for m in A B; do
    osc_request "$(eval echo \$PORT_$m)" /done /quit >/dev/null || echo "scsynth $m did not answer /quit"
done
for m in A B; do
    pid=$(eval echo \$PID_sc$m)
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done

# ------------------------------------------------------------------ checks
echo "--- sclang (its checks and messages)"
sed -n '/Welcome to SuperCollider/,$p' "$WORK/sclang.out" | grep -v '^\s*$' | cut -c1-300
echo "---"
grep -q '^TUTTI-OK$' "$WORK/sclang.out" && [ "$sc_rc" = 0 ] ||
    fail "sclang did not print TUTTI-OK and exit 0 (exit status $sc_rc): $(grep -E '^(NOT OK|TUTTI-NOT-OK)' "$WORK/sclang.out" | head -5)"
ok "sclang: notify, SynthDef.add, s.sync, buffers, buses, groups, synths, map/set/get, Pbind, SendReply, /g_queryTree, free, freeAll: every reply came"
grep -q '^KNOWN-ISSUE' "$WORK/sclang.out" && grep '^KNOWN-ISSUE' "$WORK/sclang.out"

# What sclang 3.13 prints that is not about our traffic (in this headless
# mode): "WebEngineContext used before QtWebEngine::initialize() or OpenGL
# context creation failed." (no display; lower-case "failed", so it does not
# match below). Nothing else matches; every ERROR, FAILURE or error dump
# (CALL STACK) is ours.
bad=$(grep -E 'ERROR|FAILURE|CALL STACK|^NOT OK' "$WORK/sclang.out")
[ -z "$bad" ] || fail "sclang printed errors: $(echo "$bad" | head -5)"
ok "no ERROR or FAILURE in sclang's output"

[ "$bass_rc" = 0 ] || fail "the bass client on B did not get what it expected: $(tail -1 "$WORK/bass.out")"
ok "the bass client on B got every reply it expected"

for m in A B; do
    f=$(grep -c FAILURE "$WORK/sc$m.out")
    l=$(grep -c '^late ' "$WORK/sc$m.out")
    [ "$f" = 0 ] || fail "scsynth $m printed FAILURE: $(grep FAILURE "$WORK/sc$m.out" | sort | uniq -c | head -5)"
    [ "$l" = 0 ] || fail "scsynth $m played $l bundles late"
done
ok "neither scsynth printed FAILURE or late"

# The plugin's own counters at the end: nothing late, nothing refused as
# invalid by the other member, nothing the server would not take.
for m in A B; do
    st=$(eval echo "\$STATUS_$m")
    echo "member $m: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(" ".join("%s=%s" % (k, d.get(k)) for k in ("submitted","delivered","late","injected","inject_failed","invalid_events","submit_failed","refused","local")))' "$st" 2>/dev/null)"
    for k in late inject_failed invalid_events submit_failed; do
        [ "$(json_get "$st" $k)" = 0 ] || fail "member $m: $k is $(json_get "$st" $k), not 0"
    done
done
ok "both members: no event late, invalid or not injected"

"$TUTTI" verify "$WORK/A.journal" "$WORK/B.journal" >"$WORK/verify.out" 2>&1 ||
    fail "the journals differ: $(cat "$WORK/verify.out")"
ok "tutti verify: $(head -1 "$WORK/verify.out")"

# The other server's own tree, while sclang played: A's sclang nodes in A's
# part (node id >> 26 == A's part, the ids sclang used mod 2^26), its
# synthdefs renamed to <name>.p<part>; and B's part's nodes on A.
playing=$(grep '^TUTTI-PLAYING' "$WORK/sclang.out")
python3 - "$WORK/trees.jsonl" "$PART_A" "$PART_B" "$playing" <<'PY' || fail "the servers' trees did not hold each other's parts (see above)"
import json, sys
snaps = [json.loads(l) for l in open(sys.argv[1])]
pa, pb = int(sys.argv[2]), int(sys.argv[3])
f = sys.argv[4].split()
# TUTTI-PLAYING group G drone D fx F lfo L bufplay P fn N NAME
want = {int(f[2]): None, int(f[4]): "tuttiDrone", int(f[6]): "tuttiFx", int(f[8]): "tuttiLfo",
        int(f[10]): "tuttiBufPlay", int(f[12]): f[13]}
want = {(pa << 26) + (i & ((1 << 26) - 1)): (n + ".p%d" % pa if n else None) for i, n in want.items()}
ok = True
best = max((s for s in snaps if s["server"] == "B"),
           key=lambda s: sum(1 for n in s["nodes"] if (n[0], n[1]) in want.items()), default=None)
if best is None:
    print("no snapshot of B's tree"); sys.exit(1)
have = {n[0]: n[1] for n in best["nodes"]}
missing = {i: n for i, n in want.items() if have.get(i, "absent") != n}
print("B's tree: %d of A's nodes in part %d; of sclang's %s: %s" % (
    sum(1 for i in have if i >> 26 == pa), pa, sorted(want),
    "all there, names as expected" if not missing else "missing or misnamed %s" % missing))
ok &= not missing
pings = max((sum(1 for i, n in s["nodes"] if i >> 26 == pa and n == "tuttiPing.p%d" % pa)
             for s in snaps if s["server"] == "B"), default=0)
print("B's tree: at most %d of sclang's Pbind notes (tuttiPing.p%d) at once" % (pings, pa))
ok &= pings > 0
both = sum(1 for s in snaps
           if any((n[0], n[1]) in want.items() for n in s["nodes"])
           and any(n[0] >> 26 == pb and n[0] != pb << 26 for n in s["nodes"]))
print("snapshots with sclang's nodes and B's part's nodes side by side: %d" % both)
ok &= both > 0
bs = max((sum(1 for i, n in s["nodes"] if i >> 26 == pb and i != pb << 26)
          for s in snaps if s["server"] == "A"), default=0)
print("A's tree: at most %d of B's nodes in part %d at once" % (bs, pb))
ok &= bs > 0
sys.exit(0 if ok else 1)
PY
ok "each server's tree held the other member's nodes in that member's part, sclang's by its ids and names"
