#!/usr/bin/env bash
# `tutti session` as a user runs it: a short local session must end with the
# coherent verdict, exit status 0, and leave its journals behind.
set -u
. "$(dirname "$0")/lib.sh"

run_bounded 120 "$TUTTI" session --members 3 --events 300 --rate 300 --out "$WORK/session" \
    >"$WORK/session.out" 2>"$WORK/session.log"
rc=$?
cat "$WORK/session.out"
[ "$rc" -lt 128 ] || fail "tutti session crashed (signal $((rc - 128)))"
[ "$rc" = 0 ] || fail "tutti session exited with status $rc"
grep -q '^verdict: COHERENT' "$WORK/session.out" || fail "no coherent verdict"
n=$(ls "$WORK/session"/*.journal | wc -l)
[ "$n" = 3 ] || fail "expected 3 journals, found $n"
for j in "$WORK/session"/*.journal; do
    [ "$(user_events "$j")" = 900 ] || fail "$j does not hold all 900 events"
done
ok "tutti session: coherent verdict, exit 0, three complete journals"

# A wrong option is a usage error (2) that says what is wrong.
"$TUTTI" session --members zero >"$WORK/bad.out" 2>&1
[ $? = 2 ] || fail "a bad option should exit with status 2"
grep -q -- "--members" "$WORK/bad.out" || fail "the message should name the option"
ok "a bad option is refused with status 2: $(cat "$WORK/bad.out")"
