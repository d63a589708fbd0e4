#!/usr/bin/env bash
# The member<->hub link is encrypted after a credentialed join
# (docs/security.md, "What is encrypted"). Three members join a hub with
# invitations through a relay that records every byte (what tcpdump on the
# path would see of the payload) and cuts every connection once mid-session
# (the members resume on new connections, with the keys they have). The
# capture must contain neither the session's name, the members' names nor
# the OSC address they send; the journals must be identical and complete.
# Then the same through an open hub: there the capture holds all three (the
# relay would have found them), so the check is not vacuous.
set -u
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || fail "python3 is needed for the capture relay"
HERE=$(cd "$(dirname "$0")" && pwd)
N=600
RATE=150
SESSION=nocturne-in-e-flat
OSC=/nocturne/melody/legato
NAMES="violinist-anna cellist-bruno pianist-carla"
KEYS=$WORK/keys
for m in $NAMES; do
    "$TUTTI" invite --keys "$KEYS" --role performer --out "$WORK/$m.inv" >/dev/null || fail "tutti invite failed"
done

relay() { # relay NAME CUT_AFTER: a capture relay in front of the hub; sets RELAY_URL
    rm -f "$WORK/$1.port"
    start "$1" python3 "$HERE/capture_proxy.py" "${HUB_URL##*:}" "$WORK/$1.port" "$WORK/$1.cap" "$2"
    local i
    for i in $(seq 100); do [ -s "$WORK/$1.port" ] && break; sleep 0.05; done
    [ -s "$WORK/$1.port" ] || fail "the capture relay did not start"
    RELAY_URL=tcp://127.0.0.1:$(cat "$WORK/$1.port")
}

play() { # play TAG invite|open: the three members through the relay, to the end
    local tag=$1 m cred
    for m in $NAMES; do
        cred=()
        [ "$2" = invite ] && cred=(--invite "$WORK/$m.inv")
        start "${tag}_${m//-/_}" "$TUTTI" member --hub "$RELAY_URL" --session "$SESSION" --name "$m" "${cred[@]}" \
            --events $N --rate $RATE --osc "$OSC" --wait-members 3 --expect $((3 * N)) \
            --journal "$WORK/$tag-$m.journal" --quiet
    done
    for m in $NAMES; do wait_ok "${tag}_${m//-/_}"; done
    for m in $NAMES; do
        n=$(user_events "$WORK/$tag-$m.journal")
        [ "$n" = $((3 * N)) ] || fail "$tag: $m heard $n test events, not $((3 * N))"
    done
    # shellcheck disable=SC2046
    "$TUTTI" verify $(for m in $NAMES; do echo "$WORK/$tag-$m.journal"; done) >"$WORK/$tag-verify.out" \
        || { cat "$WORK/$tag-verify.out"; fail "$tag: the journals differ"; }
}

found() { # found FILE WORD: how many times WORD occurs in the bytes of FILE
    python3 -c "import sys; print(open(sys.argv[1],'rb').read().count(sys.argv[2].encode()))" "$1" "$2"
}

# --- a hub with invitations: sealed, every connection cut once after 2.5 s (mid-play)
start_hub --session "$SESSION" --keys "$KEYS"
relay cap 2.5
play sealed invite
grep -q "cut [1-9]" "$WORK/cap.out" || fail "the relay cut no connection"
for m in $NAMES; do
    grep -q '"sealed":true' "$WORK/sealed_${m//-/_}.out" || fail "$m: its link was not sealed: $(cat "$WORK/sealed_${m//-/_}.out")"
    grep -q '"incarnation":1,' "$WORK/sealed_${m//-/_}.out" && grep -q '"connects":[2-9]' "$WORK/sealed_${m//-/_}.out" \
        || fail "$m did not reconnect and resume as itself: $(cat "$WORK/sealed_${m//-/_}.out")"
done
resumes=$(grep -c "link encrypted" "$WORK/hub.log")
stop_hub
final=$(tail -1 "$WORK/hub.out")
grep -q '"divergences":0' <<<"$final" || fail "divergences: $final"
bytes=$(stat -c %s "$WORK/cap.cap")
[ "$bytes" -gt $((3 * N * 40)) ] || fail "the capture holds only $bytes bytes"
for word in "$SESSION" $NAMES "$OSC" /nocturne; do
    c=$(found "$WORK/cap.cap" "$word")
    [ "$c" = 0 ] || fail "the capture of the sealed session holds \"$word\" $c times"
done
ok "sealed: $bytes bytes captured, $(grep -o '[0-9]* connections' "$WORK/cap.out") cut and resumed, no session name, member name or OSC address in them; $(head -1 "$WORK/sealed-verify.out") ($resumes joins encrypted; hub: $(grep -o '"unsealed_dropped":[0-9]*' <<<"$final"))"
kill "$PID_cap" 2>/dev/null; wait "$PID_cap" 2>/dev/null

# --- the same on an open hub: in clear, as documented (the check above is not vacuous)
start_hub --session "$SESSION"
relay open 0
play open open
stop_hub
for word in "$SESSION" $NAMES "$OSC"; do
    c=$(found "$WORK/open.cap" "$word")
    [ "$c" -gt 0 ] || fail "the capture of the open session should hold \"$word\""
done
grep -q '"sealed":false' "$WORK/open_violinist_anna.out" || fail "an open hub's link called itself sealed"
kill "$PID_open" 2>/dev/null; wait "$PID_open" 2>/dev/null
ok "open hub: the capture holds the session name ($(found "$WORK/open.cap" "$SESSION")x), the member names and the OSC address ($(found "$WORK/open.cap" "$OSC")x) in clear, as documented; $(head -1 "$WORK/open-verify.out")"
