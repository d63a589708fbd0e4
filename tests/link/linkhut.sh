#!/usr/bin/env bash
# LinkHut (Debian's ableton-link-utils, a real Link app in a terminal) in a
# city that `tutti link` bridges into a session: its screen, captured with
# tmux, shows it follow a tempo change made elsewhere in the session and its
# own tempo change go to the session and come back on a bar line.
#
#   bash tests/link/linkhut.sh build/tutti [CAPTURE_FILE]
#
# Everything runs in one network namespace the script creates (the hub on
# its loopback; Link's multicast stays inside); LinkHut plays through a JACK
# server with the dummy driver. Needs root, tmux, LinkHut, jackd.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
CAP=${2:-$WORK/linkhut.txt}
command -v LinkHut >/dev/null || { echo "skipped: no LinkHut (ableton-link-utils)"; exit 77; }
command -v tmux >/dev/null || { echo "skipped: no tmux"; exit 77; }
NS=t19hut$$
SOCK=t19hut$$
ip netns add "$NS" || fail "cannot create a network namespace"
trap 'tmux -L "$SOCK" kill-server 2>/dev/null; cleanup; ip netns del "$NS" 2>/dev/null' EXIT
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

start hub in_ns "$TUTTI" hub --listen tcp://127.0.0.1:7770 --session room --bpm 120 \
    --duration 120 --quiet
start bridge in_ns "$TUTTI" link tcp://127.0.0.1:7770 room bridge --duration 100
start_jackd -r -d dummy -r 48000 -p 256
in_ns tmux -L "$SOCK" new-session -d -s hut -x 100 -y 16 \
    "env JACK_DEFAULT_SERVER=$JACK_DEFAULT_SERVER JACK_NO_START_SERVER=1 LinkHut"
sleep 2
# the whole screen the first time, then its header and state lines
shots=0
shot() {
    local keep='.'
    [ "$shots" -gt 0 ] && keep='^(enabled|yes|no) '
    shots=$((shots + 1))
    { echo "---- $1"; tmux -L "$SOCK" capture-pane -p -t hut | sed -e 's/[[:space:]]*$//' |
        grep -v '^$' | grep -E "$keep"; } >>"$CAP"
}
: >"$CAP"
# LinkHut's state line: "enabled | num peers | quantum | start stop sync | tempo | ..."
hut_state() { tmux -L "$SOCK" capture-pane -p -t hut | grep -E '^(yes|no) +\|' | tail -n 1; }
hut_tempo() { hut_state | awk -F'|' '{gsub(/ /, "", $5); print $5}'; }
hut_state | grep -q "^no " && tmux -L "$SOCK" send-keys -t hut a
sleep 4
shot "LinkHut enabled in the bridged city: the session's 120 bpm, one Link peer (the bridge)"
t1=$(hut_tempo)
in_ns "$TUTTI" member --hub tcp://127.0.0.1:7770 --session room --name elsewhere \
    --role conductor --request-bpm 97 --events 0 --duration 2 --quiet >/dev/null 2>&1 ||
    fail "the conductor's member did not run"
sleep 2
shot "a conductor elsewhere in the session asked for 97 bpm: LinkHut follows"
t2=$(hut_tempo)
tmux -L "$SOCK" send-keys -t hut e
sleep 0.4
shot "LinkHut's user pressed 'e' (tempo + 1): the bridge proposed 98 and put the room back on the session's 97 until the agreed bar line"
sleep 4
shot "the bridge proposed 98 bpm; every city switched on the same bar line"
t3=$(hut_tempo)
tail -n 3 "$WORK/bridge.out" >>"$CAP"
cat "$CAP"
echo "LinkHut's tempo: $t1, then $t2, then $t3"
[ "${t1%%.*}" = 120 ] || fail "LinkHut did not take the session's 120 bpm"
[ "${t2%%.*}" = 97 ] || fail "LinkHut did not follow the session to 97 bpm"
[ "${t3%%.*}" = 98 ] || fail "LinkHut's own change did not come back from the session"
ok "LinkHut followed the session, and its own change went through the session"
