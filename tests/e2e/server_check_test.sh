#!/usr/bin/env bash
# Fault injection for the server check (issue 15, item 3): three real
# scsynth servers with the plugin, a hub and the trio example on loopback
# (scripts/localsession.py). 3 s into the playing, member 2's server is made
# to differ behind the session's back: a group of member 3's part (with the
# synths in it) is freed through scsynth's own port, not the proxy. Then:
#   - every member reports the difference live within 2 s (polled through
#     /tutti/status), naming member 3's part and member 2's server;
#   - the servers' logs say it ("tutti: server check: ... server member2
#     differs ... missing");
#   - tutti verify finds the stream identical and still says "not coherent",
#     naming the part, the nodes and the server.
# Without the server check nothing of this is said: the stream is the same
# everywhere, so the journals alone are identical and the run looks healthy.
# Skips (exit 0) only when scsynth, JACK or the plugin are not there at all.
set -u
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR (TUTTI_BUILD_PLUGIN=OFF?)"; exit 0; }

python3 "$TOP/scripts/localsession.py" --tutti "$TUTTI" --plugin-dir "$PLUGIN_DIR" \
    --out "$WORK/fault" --check --bars 6 --fault-member 2 --fault-at 3 >"$WORK/fault.log" 2>&1
rc=$?
grep -v '^{' "$WORK/fault.log"
[ "$rc" = 0 ] || fail "the fault was not caught as it should be (see the problems above)"

python3 - "$WORK/fault.log" <<'PY' || fail "the report does not show the fault as expected"
import json, sys
rep = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
f = rep["fault"]
assert f["server"] == "member2", f
assert len(f["reported"]) == 3, f["reported"]
for who, r in f["reported"].items():
    assert r["after_s"] <= 2.0, (who, r)
    assert "part %d" % f["part"] in r["text"] and "member2" in r["text"], (who, r)
    print("%s reported it after %.2f s: %s" % (who, r["after_s"], r["text"]))
assert any("missing" in l and "member2" in l for l in rep["server_check"]["logged"])
assert any(l.startswith("not coherent") for l in rep["server_check"]["verify"])
assert rep["verify"].startswith("identical")
PY
ok "member 2's server freed a group of member 3's part: every member named the part and member 2's server within 2 s; tutti verify: the same stream, not coherent"

j=("$WORK"/fault/member*.journal)
"$TUTTI" verify "${j[@]}" >"$WORK/verify.out"
[ $? = 1 ] || fail "tutti verify did not fail on the journals"
grep -q "^not coherent: the servers did different things" "$WORK/verify.out" || fail "tutti verify did not say not coherent"
grep -q "server member2 differs from member1, member3: node" "$WORK/verify.out" || fail "tutti verify did not name the node and the server"
ok "tutti verify on the journals: $(grep -c '^  round' "$WORK/verify.out") differences named, exit status 1"
