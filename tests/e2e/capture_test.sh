#!/usr/bin/env bash
# What a session's traffic shows on the wire (issue 22): the README's main
# job (scripts/localsession.py: a hub with invitations, three real scsynth
# members with the plugin, the trio example) inside a network namespace of
# its own, its loopback captured the way tcpdump captures it (a raw packet
# socket, tests/e2e/locapture.py, written as a pcap file). In the TCP traffic
# to and from the hub's port there must be no session name, no member name
# and no OSC address of what was played; as a control, the same capture's
# UDP (each client's OSC to its own server's proxy port, local and in clear
# by design) must hold those addresses, so the capture does see them when
# they are there.
# Needs root for the namespace (skips otherwise); skips when scsynth, JACK
# or the plugin are not there.
set -u
if [ -z "${TUTTI_IN_NETNS:-}" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
        echo "SKIP: needs root and unshare for a network namespace of its own"
        exit 0
    fi
    exec unshare -n env TUTTI_IN_NETNS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in scsynth jackd jack_wait python3 ip; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR (TUTTI_BUILD_PLUGIN=OFF?)"; exit 0; }
ip link set lo up || fail "cannot bring up the namespace's loopback"

start capture python3 "$(dirname "$0")/locapture.py" --out "$WORK/lo.pcap" --seconds 240
for i in $(seq 100); do
    grep -q capturing "$WORK/capture.out" 2>/dev/null && break
    sleep 0.1
done
grep -q capturing "$WORK/capture.out" || { cat "$WORK/capture.log"; fail "the capture did not start"; }

session=friday-rehearsal-7
python3 "$TOP/scripts/localsession.py" --tutti "$TUTTI" --plugin-dir "$PLUGIN_DIR" \
    --out "$WORK/session" --bars 2 --session "$session" --check >"$WORK/session.log" 2>&1
rc=$?
kill -TERM "$PID_capture"
wait "$PID_capture" 2>/dev/null
grep -v '^{' "$WORK/session.log"
[ "$rc" = 0 ] || fail "the session did not hold what it promises (see above)"
cat "$WORK/capture.out"

port=$(sed -n 's|.*:\([0-9]*\)$|\1|p' "$WORK/session/hub.url")
[ -n "$port" ] || fail "no hub port"
python3 "$(dirname "$0")/locapture.py" --read "$WORK/lo.pcap" --port "$port" --find \
    "$session" member1 member2 member3 /s_new /n_set /d_recv /b_allocRead /tutti/asset \
    >"$WORK/found.json" || fail "the capture could not be read"
cat "$WORK/found.json"
python3 - "$WORK/found.json" <<'PY' || fail "names or OSC addresses in clear in the session's traffic"
import json, sys
f = json.load(open(sys.argv[1]))
hub = f["in_hub_traffic"]
assert sum(f["tcp_bytes"].values()) > 100000, f["tcp_bytes"]  # the session went through
clear = {k: v for k, v in hub.items() if v}
assert not clear, "in the hub's TCP traffic: %s" % clear
# control: the clients' own OSC to their proxies (UDP, local) is in clear
assert f["in_udp"]["/s_new"] > 10 and f["in_udp"]["/d_recv"] > 0, f["in_udp"]
print("hub traffic: %d bytes to the hub, %d from it; none of %s in it; the clients' local "
      "UDP: /s_new %d times" % (f["tcp_bytes"].get("to_hub", 0), f["tcp_bytes"].get("from_hub", 0),
                                 ", ".join(hub), f["in_udp"]["/s_new"]))
PY
ok "a captured credentialed session (loopback, pcap) shows no session name, member name or OSC address in its traffic with the hub"
