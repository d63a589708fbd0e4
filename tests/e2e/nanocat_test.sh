#!/usr/bin/env bash
# nanomsg peers and the hub, as the README says: nanomsg (which has only pair
# v0) connects to the hub like NNG's pair1 members do.
#   1. Debian's nanocat (--pair) sends a member's HELLO; the hub answers with
#      its CHALLENGE, which nanocat prints.
#   2. A member on libnanomsg (nanopeer.py) completes the handshake, is
#      welcomed, and hears the events an NNG member (tutti member) plays.
set -u
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

command -v nanocat >/dev/null || fail "nanocat is not installed (Debian: nanomsg-utils; scripts/deps.sh)"
start_hub --session tutti
port=${HUB_URL##*:}

# 1. nanocat: HELLO in, CHALLENGE out.
python3 -c "
import sys; sys.path.insert(0, '$here')
import os, tuttiproto as t
open('$WORK/hello.bin', 'wb').write(t.hello('tutti', 'nanocat', cnonce=os.urandom(32), epk=os.urandom(32)))"
run_bounded 20 nanocat --pair --connect "tcp://127.0.0.1:$port" --file "$WORK/hello.bin" \
    --hex --recv-timeout 2 >"$WORK/nanocat.out" 2>"$WORK/nanocat.log"
python3 - "$WORK/nanocat.out" <<PY || fail "nanocat did not print the hub's CHALLENGE: $(head -c 300 "$WORK/nanocat.out") $(cat "$WORK/nanocat.log")"
import ast, sys
sys.path.insert(0, "$here")
import tuttiproto as t
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.startswith('"')]
msgs = [ast.literal_eval("b" + l) for l in lines]   # --hex prints "\x54\x55..."
recs = [r for m in msgs for r in (t.parse_frame(m) or (0, []))[1]]
assert any(r[0] == t.REC_CHALLENGE for r in recs), recs
print("nanocat received %d message(s) from the hub: %s" % (len(msgs), [r[0] for r in recs]))
PY
ok "nanocat --pair (SP pair v0) sent a HELLO and printed the hub's CHALLENGE"
grep -q "neither pair1" "$WORK/hub.log" && fail "the hub refused nanocat: $(grep 'neither pair1' "$WORK/hub.log")"

# 2. A nanomsg member in a session with an NNG member.
start anna "$TUTTI" member --hub "$HUB_URL" --name anna --events 200 --rate 100 \
    --wait-members 2 --expect 200 --journal "$WORK/anna.journal" --quiet
run_bounded 60 python3 "$here/nanopeer.py" "$HUB_URL" tutti nano 6 >"$WORK/nano.out" 2>&1 \
    || fail "the nanomsg member failed: $(cat "$WORK/nano.out")"
grep -q '^welcome ' "$WORK/nano.out" || fail "the nanomsg member was not welcomed: $(cat "$WORK/nano.out")"
read -r _ events origins < <(grep '^events ' "$WORK/nano.out")
[ "${events:-0}" -ge 100 ] || fail "the nanomsg member heard ${events:-0} of anna's 200 events"
ok "a member on libnanomsg joined ($(grep '^welcome' "$WORK/nano.out")) and heard $events events from $origins origin(s)"
grep -q "nano.*joined as member\|joined as member.*nano" "$WORK/hub.log" || fail "the hub did not log the nanomsg member's join"
wait_ok anna
stop_hub
