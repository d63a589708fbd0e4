#!/usr/bin/env bash
# The scsynth plugin in solo mode, against a real scsynth (JACK dummy driver):
#  1. transparency: a recorded client sequence (synthdef, nodes, groups,
#     queries, bundles, buffers, /notify) gives the same replies straight to
#     scsynth and through the proxy, over UDP and over TCP; two clients at once,
#     both registered, each get their own /notify answers and both hear the
#     notifications; a TCP client registers and leaves through the proxy;
#     scsynth logs no FAILURE;
#  2. robustness: a flood of malformed OSC (random bytes, truncated bundles,
#     huge element sizes, lying type tags and blob sizes, TCP frames of absurd
#     length) into the proxy; scsynth must still answer, the proxy must have
#     counted what it dropped;
#  3. unload: /quit makes scsynth unload the plugin, which stops and joins
#     its thread, and scsynth exits cleanly.
# Runs with the tutti program's build folder: the plugin is <build>/plugin.
# Skips (exit 0) only when scsynth, JACK or the plugin are not there at all.
set -u
. "$(dirname "$0")/lib.sh"

CLIENT="python3 $(dirname "$0")/scclient.py"
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR (TUTTI_BUILD_PLUGIN=OFF?)"; exit 0; }

# A JACK server of our own, so tests running side by side do not share one.
start_jackd -r -d dummy -r 48000 -p 64

# A port free for both UDP and TCP for scsynth; the proxy picks its own (0).
sc_port
start scsynth env TUTTI_PROXY_PORT=0 scsynth -u "$PORT" -t "$PORT" -B 127.0.0.1 -R 0 -D 0 \
    -U "$PLUGIN_DIR:/usr/lib/SuperCollider/plugins"
PROXY=""
for i in $(seq 200); do
    PROXY=$(grep -o 'proxy listening on 127.0.0.1:[0-9]*' "$WORK/scsynth.out" 2>/dev/null | cut -d: -f2)
    [ -n "$PROXY" ] && break
    kill -0 "$PID_scsynth" 2>/dev/null || break
    sleep 0.1
done
[ -n "$PROXY" ] || { cat "$WORK/scsynth.out" "$WORK/scsynth.log"; fail "the proxy did not open its port"; }
grep -q 'server ready' "$WORK/scsynth.out" || fail "scsynth is not ready"
ok "scsynth on $PORT, the proxy on $PROXY"

# 1. The same traffic, straight and through the proxy. Straight runs go first:
# client ids are handed out from a pool that remembers the order of earlier
# registrations, and the proxy mirrors scsynth's pool, so the same history
# gives the same ids.
$CLIENT sequence --port "$PORT" --out "$WORK/direct-udp.txt" || fail "the sequence failed straight to scsynth (UDP)"
$CLIENT sequence --port "$PORT" --tcp --out "$WORK/direct-tcp.txt" || fail "the sequence failed straight to scsynth (TCP)"
$CLIENT pair --port "$PORT" --out "$WORK/direct-pair.txt" || fail "two clients failed straight to scsynth"
$CLIENT sequence --port "$PROXY" --out "$WORK/proxy-udp.txt" || fail "the sequence failed through the proxy (UDP)"
$CLIENT sequence --port "$PROXY" --tcp --out "$WORK/proxy-tcp.txt" || fail "the sequence failed through the proxy (TCP)"
$CLIENT pair --port "$PROXY" --out "$WORK/proxy-pair.txt" || fail "two clients failed through the proxy"
for t in udp tcp pair; do
    diff "$WORK/direct-$t.txt" "$WORK/proxy-$t.txt" >"$WORK/diff-$t.txt" ||
        { cat "$WORK/diff-$t.txt"; fail "replies differ through the proxy ($t)"; }
done
n=$(grep -vc '^---' "$WORK/proxy-udp.txt")
grep -q "^/n_go 1000 1" "$WORK/proxy-udp.txt" || fail "no /n_go in the recorded replies"
grep -q "^b: /n_go 4000" "$WORK/proxy-pair.txt" || fail "the second client did not hear the first one's node"
ok "identical replies straight and through the proxy: $n replies over UDP, the same over TCP, two clients at once"

# scsynth 3.13 leaves part of the ReplyAddress of TCP packets unset, so its
# registrations of TCP clients are unreliable (notifications may not come,
# /notify 0 says "not registered"): no reference to compare with. The proxy
# tracks TCP clients by connection; check that on its own.
$CLIENT tcp-notify --port "$PROXY" >"$WORK/proxy-tcp-notify.txt" || { cat "$WORK/proxy-tcp-notify.txt"; fail "a TCP client could not register, hear and leave through the proxy"; }
grep -q "^tcp: /done '/notify'\$" "$WORK/proxy-tcp-notify.txt" || { cat "$WORK/proxy-tcp-notify.txt"; fail "/notify 0 over TCP was not confirmed by the proxy"; }
ok "a TCP client registers, hears /n_go and /n_end, and unregisters through the proxy"
if grep -q FAILURE "$WORK/scsynth.out"; then
    grep FAILURE "$WORK/scsynth.out" | head -5
    fail "scsynth reported a FAILURE during the recorded sequences"
fi
ok "scsynth logged no FAILURE"

# 2. Malformed OSC into the proxy.
$CLIENT flood --port "$PROXY" --seconds 3 --seed 7 || fail "the flood client failed"
kill -0 "$PID_scsynth" 2>/dev/null || { tail -20 "$WORK/scsynth.out"; fail "scsynth died under the flood"; }
$CLIENT status --port "$PROXY" --tries 10 >/dev/null || fail "scsynth does not answer /status through the proxy after the flood"
$CLIENT status --port "$PORT" --tries 10 >/dev/null || fail "scsynth does not answer /status after the flood"
st=$($CLIENT tutti-status --port "$PROXY") || fail "no /cmd tutti status answer"
invalid=$(echo "$st" | grep -o 'invalid=[0-9]*' | cut -d= -f2)
[ "${invalid:-0}" -gt 1000 ] || fail "the proxy counted too few malformed packets: $st"
ok "scsynth survived the flood and answers; proxy: $st"

# 3. /quit: the plugin is unloaded, its thread joined, scsynth exits 0.
$CLIENT quit --port "$PORT" || fail "scsynth did not confirm /quit"
for i in $(seq 300); do kill -0 "$PID_scsynth" 2>/dev/null || break; sleep 0.05; done
kill -0 "$PID_scsynth" 2>/dev/null && fail "scsynth did not exit within 15 s of /quit"
wait_ok scsynth
grep -q 'tutti: proxy stopped' "$WORK/scsynth.out" || fail "the plugin did not report its thread stopped"
ok "scsynth quit cleanly: $(grep 'tutti: proxy stopped' "$WORK/scsynth.out")"
