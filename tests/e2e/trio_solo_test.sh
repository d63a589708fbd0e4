#!/usr/bin/env bash
# The trio example (examples/trio) against one plain scsynth, no tutti plugin
# (JACK dummy driver), recorded with examples/osc/record.py:
#  1. determinism: each part's --dry-run is identical for the same --start and
#     --seed, and another seed changes it;
#  2. alone: drums, bass and chords one after another, all with the same ids
#     (node 1000.., buffer 0.., bus 16.., control bus 0), as each member's
#     client would choose them. One after another because on one plain server
#     identical ids collide; each part frees everything it made, so the next
#     one finds its ids free. Every reply expected (/done, /synced, /n_go in
#     the right group, /n_end) must come, with our ids, and nothing else;
#  3. together: the three at once on one grid, moved apart with --id-base
#     0/1/2 (what a session's namespaces do for them), their samples sent as
#     data (--buffers send: /b_alloc + /b_setn, what a session can carry)
#     rather than read from a path, chords over TCP (with --no-notify:
#     scsynth 3.13's own TCP port keeps registrations by uninitialised
#     memory, see docs/plugin.md);
#  then: no FAILURE and no "late" in scsynth's log; in the recording, sound in
#  every beat where a part played, silence before, between and after the
#  parts (so everything was freed), no clipping.
# $1 (the tutti program) is required as by the other end-to-end tests; this
# test does not use it. Skips (exit 0) only when scsynth or JACK are missing.
set -u
. "$(dirname "$0")/lib.sh"

EX=$(cd "$(dirname "$0")/../../examples" && pwd)
PART="python3 $EX/trio/part.py"
SC_PLUGINS=${TUTTI_SC_PLUGINS:-/usr/lib/SuperCollider/plugins}
for tool in scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -d "$SC_PLUGINS" ] || { echo "SKIP: no SuperCollider plugins at $SC_PLUGINS (TUTTI_SC_PLUGINS)"; exit 0; }

# ntp_in S: NTP seconds, S seconds from now
ntp_in() { python3 -c "import time; print('%.3f' % (time.time() + 2208988800 + $1))"; }

# 1. Determinism, without a server.
S0=3950000000
for p in drums bass chords; do
    for run in a b; do
        $PART --part $p --start $S0 --seed 5 --samples "$WORK/samples" --dry-run >"$WORK/dry-$p-$run.txt" ||
            fail "$p --dry-run failed"
    done
    $PART --part $p --start $S0 --seed 6 --samples "$WORK/samples" --dry-run >"$WORK/dry-$p-c.txt" || fail "$p --dry-run failed"
    cmp -s "$WORK/dry-$p-a.txt" "$WORK/dry-$p-b.txt" || fail "$p: two dry runs with the same --start and --seed differ"
    cmp -s "$WORK/dry-$p-a.txt" "$WORK/dry-$p-c.txt" && fail "$p: --seed 6 plays the same as --seed 5"
    grep -q '"timetag": ' "$WORK/dry-$p-a.txt" || fail "$p: no timetagged bundles in its dry run"
done
ok "each part sends the same packets for the same --start and --seed, others for another seed"

# A JACK server of our own, so tests running side by side do not share one.
# This test reads times out of the recording and forbids late bundles, so
# the server's clock must keep pace on a busy machine:
# - periods of 1024 frames: the dummy driver sleeps once per period, and
#   with small periods its sample clock fell behind the system's under load
#   (-p 64 gave 44300 frames a second, -p 256 46900, -p 1024 48090); bundles
#   are still placed to the 64-sample control block;
# - realtime scheduling (-R) where it is allowed: without it, a loaded
#   machine stalled scsynth for over half a second (bundles sent 0.3 s ahead
#   ran late). Where it is not allowed, jackd says so and runs without.
start_jackd -R -d dummy -r 48000 -p 1024

sc_port
# -U: the standard UGens only, so no tutti plugin is loaded even if one is
# installed there (and if it were, TUTTI_PROXY_PORT=0 keeps it off 57121).
start scsynth env TUTTI_PROXY_PORT=0 scsynth -u "$PORT" -t "$PORT" -B 127.0.0.1 -R 0 -i 2 -o 2 \
    -b 32768 -a 8192 -c 32768 -U "$SC_PLUGINS"
for i in $(seq 100); do
    grep -q 'server ready' "$WORK/scsynth.out" 2>/dev/null && break
    kill -0 "$PID_scsynth" 2>/dev/null || break
    sleep 0.1
done
grep -q 'server ready' "$WORK/scsynth.out" || { cat "$WORK/scsynth.out" "$WORK/scsynth.log"; fail "scsynth is not ready"; }
ok "scsynth on $PORT (-i 2 -o 2)"

# The recorder runs through phases 2 and 3 and is stopped with SIGTERM. The
# lead times leave room for a loaded machine (CI runs test suites side by
# side): the clients' set-up must finish before their first bar.
T0=$(ntp_in 4)
start recorder python3 "$EX/osc/record.py" --port "$PORT" --seconds 300 --out "$WORK/trio.wav" --at "$T0"
sleep 4.5
kill -0 "$PID_recorder" 2>/dev/null || { cat "$WORK/recorder.log"; fail "record.py did not start"; }

# 2. Alone, one after another, the same ids each time.
: >"$WORK/alone.starts"
for p in drums bass chords; do
    S=$(ntp_in 4)
    echo "$p $S" >>"$WORK/alone.starts"
    run_bounded 60 $PART --part $p --port "$PORT" --start "$S" --bars 2 --seed 1 --samples "$WORK/samples" \
        >"$WORK/alone-$p.json" 2>"$WORK/alone-$p.log" || { cat "$WORK/alone-$p.json" "$WORK/alone-$p.log"; fail "$p alone failed"; }
    ok "$p alone: $(cat "$WORK/alone-$p.json")"
done
sleep 1

# 3. Together on one grid, each in its own id namespace.
S=$(ntp_in 6)
start drums $PART --part drums --port "$PORT" --start "$S" --id-base 0 --buffers send --samples "$WORK/samples"
start bass $PART --part bass --port "$PORT" --start "$S" --id-base 1 --buffers send --samples "$WORK/samples"
start chords $PART --part chords --port "$PORT" --tcp --no-notify --start "$S" --id-base 2 --buffers send \
    --samples "$WORK/samples"
for p in drums bass chords; do
    wait_ok $p
    cp "$WORK/$p.out" "$WORK/together-$p.json"
    ok "$p together: $(cat "$WORK/together-$p.json")"
done
echo "$S" >"$WORK/together.start"
sleep 1

kill -TERM "$PID_recorder"
wait_ok recorder
grep -q '"stop"' "$WORK/recorder.log" || { cat "$WORK/recorder.log"; fail "record.py did not report its times"; }
python3 "$EX/osc/wavstat.py" "$WORK/trio.wav" >"$WORK/trio.stat" || fail "wavstat.py could not read the recording"

if grep -q FAILURE "$WORK/scsynth.out"; then
    grep FAILURE "$WORK/scsynth.out" | head -5
    fail "scsynth reported a FAILURE"
fi
if grep -q late "$WORK/scsynth.out"; then
    grep late "$WORK/scsynth.out" | head -5
    fail "scsynth executed bundles late"
fi
ok "scsynth logged no FAILURE and nothing late"

python3 - "$WORK" <<'EOF' || fail "the summaries or the recording are not as they should be"
import json, os, sys
work = sys.argv[1]
bad = []
def load(name):
    with open(os.path.join(work, name)) as f:
        return json.loads(f.read().strip().splitlines()[-1])

# every part's summary is clean
for phase in ("alone", "together"):
    for p in ("drums", "bass", "chords"):
        s = load("%s-%s.json" % (phase, p))
        if not (s["ok"] and not s["missing"] and not s["unexpected_ids"] and not s["errors"] and s["late"] == 0
                and s["replies_received"] == s["replies_expected"] > 0):
            bad.append("%s %s: %s" % (phase, p, s))
        if phase == "alone" and (s["foreign_notifications"] or s["defs_replaced"]):
            bad.append("alone %s heard about nodes or defs not its own: %s" % (p, s))

# map times to the recording's windows: the dummy driver's sample clock may
# run slower than the system clock, so use the recorder's start and stop
with open(os.path.join(work, "recorder.log")) as f:
    rec = [json.loads(l) for l in f if l.startswith("{")][-1]
with open(os.path.join(work, "trio.stat")) as f:
    st = json.load(f)
frames, rate, win = st["frames"], st["rate"], st["windows"]
per_second = frames / (rec["stop"] - rec["start"])
if not 0.98 * rate < per_second < 1.02 * rate:
    bad.append("the recording holds %d frames for %.3f s: the server's clock did not keep pace (a busy machine?)"
               % (frames, rec["stop"] - rec["start"]))
def w(t):
    return int((t - rec["start"]) * per_second / (st["window"] * rate))
def span(t0, t1):
    return win[max(w(t0), 0):max(w(t1), w(t0) + 1)]

beat, bar = 0.5, 2.0
SOUND, SILENCE = 0.005, 0.0005
def check_beats(name, start, bars):
    for b in range(bars * 4):
        s = span(start + b * beat, start + (b + 1) * beat)
        if not s or max(s) < SOUND:
            bad.append("%s: no sound in beat %d (%s)" % (name, b, s))
def check_silent(name, t0, t1):
    s = span(t0, t1)
    if s and max(s) > SILENCE:
        bad.append("%s: sound where there should be none (max RMS %.4f)" % (name, max(s)))

starts = [l.split() for l in open(os.path.join(work, "alone.starts"))]
check_silent("before the first part", rec["start"] + 0.05, float(starts[0][1]) - 0.1)
levels = []
for k, (p, s) in enumerate(starts):
    s = float(s)
    check_beats("%s alone" % p, s, 2)
    end = s + 2 * bar + 1.5  # the parts' clean-up bundle: 3 beats after the last bar
    nxt = float(starts[k + 1][1]) if k + 1 < len(starts) else float(open(os.path.join(work, "together.start")).read())
    check_silent("after %s alone" % p, end + 0.3, nxt - 0.1)
    seg = span(s, s + 2 * bar)
    levels.append("%s %.3f" % (p, (sum(x * x for x in seg) / len(seg)) ** 0.5))
t = float(open(os.path.join(work, "together.start")).read())
check_beats("together", t, 4)
check_silent("after the trio", t + 4 * bar + 1.8, rec["stop"] - 0.1)
if max(st["peak"]) >= 0.99:
    bad.append("the recording clips: peak %s" % st["peak"])
for b in bad:
    print(b)
if not bad:
    print("levels alone (RMS): %s; together peak %s; %.1f s recorded at %.0f frames/s"
          % (", ".join(levels), st["peak"], frames / rate, per_second))
sys.exit(1 if bad else 0)
EOF
ok "every part's replies as expected; sound in every beat, silence around the parts, no clipping"

python3 "$EX/../tests/e2e/scclient.py" quit --port "$PORT" || fail "scsynth did not confirm /quit"
for i in $(seq 300); do kill -0 "$PID_scsynth" 2>/dev/null || break; sleep 0.05; done
kill -0 "$PID_scsynth" 2>/dev/null && fail "scsynth did not exit within 15 s of /quit"
wait_ok scsynth
ok "scsynth quit cleanly"
