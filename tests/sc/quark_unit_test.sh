#!/usr/bin/env bash
# The SuperCollider quark's unit tests (sc/tests, SuperCollider's UnitTest)
# and its help files, in a headless sclang (QT_QPA_PLATFORM=offscreen) that
# compiles the class library with sc/ as an include path, as
# Quarks.install("sc") does. No scsynth: the tests play the plugin's session
# feed to sclang itself (sc/tests/TuttiTestFeed.sc).
# Fails unless every test passes, both help files render, and SCDoc posts no
# WARNING or ERROR while it renders them.
# Usage: bash tests/sc/quark_unit_test.sh   (ctest: sc.quark_unit)
# Skips (exit 0) only when sclang is not installed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
command -v sclang >/dev/null || { echo "SKIP: sclang is not installed (scripts/deps.sh installs it)"; exit 0; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tutti-sc-unit.XXXXXX")
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
    if [ "${FAILED:-0}" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept for inspection: $WORK"; fi
}
trap cleanup EXIT
fail() { FAILED=1; echo "FAIL: $*"; exit 1; }

# bounded SECONDS CMD...: CMD in the background (its pid in PID), stopped if it
# takes longer; returns its exit status. The watchdog ends its own sleep when
# it is stopped, so nothing holds the test's output open afterwards.
bounded() {
    local secs=$1 dog rc
    shift
    "$@" &
    PID=$!
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        sleep "$secs" &
        s=$!
        wait "$s"
        kill -TERM "$PID" 2>/dev/null
    ) &
    dog=$!
    wait "$PID"
    rc=$?
    PID=
    kill -TERM "$dog" 2>/dev/null
    wait "$dog" 2>/dev/null
    return $rc
}

# sclang's own files from a fresh HOME; the quark from this tree only (an
# installed copy in a system Extensions folder would define its classes twice).
mkdir -p "$WORK/home" "$WORK/xdg"
chmod 700 "$WORK/xdg"
cat >"$WORK/sclang_conf.yaml" <<EOF
includePaths:
    - $TOP/sc
excludePaths:
    - /usr/share/SuperCollider/Extensions
    - /usr/local/share/SuperCollider/Extensions
postInlineWarnings: false
EOF

# sclang gives up by itself after 150 s; this stops it at 180
bounded 180 env HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/xdg" QT_QPA_PLATFORM=offscreen \
    QTWEBENGINE_DISABLE_SANDBOX=1 TUTTI_SC_QUARK="$TOP/sc/" sclang -l "$WORK/sclang_conf.yaml" "$HERE/unit.scd" \
    >"$WORK/sclang.out" 2>&1
rc=$?

grep -E '^(PASS|FAIL)|^(RUNNING|UNIT TESTS)|There were|TUTTI-' "$WORK/sclang.out" | grep -v '^TUTTI-DOC-RENDER ' | cut -c1-300
grep -q '^TUTTI-UNIT passes' "$WORK/sclang.out" || { tail -30 "$WORK/sclang.out"; fail "sclang did not finish the tests (exit status $rc)"; }
grep -E 'ERROR|CALL STACK' "$WORK/sclang.out" | grep -v '^TUTTI-' | head -5 | grep -q . &&
    { sed -n '/ERROR/,+12p' "$WORK/sclang.out" | head -40; }
passes=$(sed -n 's/^TUTTI-UNIT passes \([0-9]*\) .*/\1/p' "$WORK/sclang.out")
failures=$(sed -n 's/^TUTTI-UNIT .* failures \([0-9]*\) .*/\1/p' "$WORK/sclang.out")
docs=$(sed -n 's/^TUTTI-UNIT .* docs \([0-9]*\).*/\1/p' "$WORK/sclang.out")
[ "$failures" = 0 ] || fail "$failures of $((passes + failures)) checks failed (FAIL lines above)"
[ "$passes" -gt 0 ] || fail "no check passed"
ok_rc=$rc
[ "$ok_rc" = 0 ] || fail "sclang exited with status $ok_rc"
echo "ok: $passes checks of the quark's unit tests passed"

# SCDoc's complaints while rendering the quark's help
warnings=$(sed -n '/^TUTTI-DOC-RENDER /,/^TUTTI-DOC-RENDERED/p' "$WORK/sclang.out" | grep -E 'WARNING|ERROR')
[ "$docs" -ge 2 ] || fail "SCDoc found $docs of the quark's help files, not 2 or more"
[ -z "$warnings" ] || fail "SCDoc warned while rendering the quark's help: $(echo "$warnings" | head -5)"
for d in Tutti TuttiClock; do
    [ -s "$WORK/home/.local/share/SuperCollider/Help/Classes/$d.html" ] ||
        fail "no rendered help for $d"
done
echo "ok: SCDoc rendered $docs help files of the quark without a warning"

# Quarks.install("path") as a user does it, in another fresh HOME: the first
# sclang installs (adds the path to its sclang_conf.yaml), the second finds
# the classes and their help after the class library compiles again.
sc_run() { # sc_run HOME CODE: a headless sclang running CODE, at most 60 s
    printf '%s\n' "$2" >"$WORK/run.scd"
    bounded 60 env HOME="$1" XDG_RUNTIME_DIR="$WORK/xdg" QT_QPA_PLATFORM=offscreen \
        QTWEBENGINE_DISABLE_SANDBOX=1 sclang "$WORK/run.scd" >"$WORK/run.out" 2>&1
}
mkdir -p "$WORK/home2"
sc_run "$WORK/home2" "SystemClock.sched(30, { 1.exit }); Quarks.install(\"$TOP/sc\"); \"TUTTI-INSTALLED %\".format(Quarks.installed.collect(_.localPath)).postln; 0.exit;"
grep -q "^TUTTI-INSTALLED.*$TOP/sc" "$WORK/run.out" || { tail -20 "$WORK/run.out"; fail "Quarks.install(\"$TOP/sc\") did not install it"; }
sc_run "$WORK/home2" 'SystemClock.sched(30, { 1.exit }); "TUTTI-CLASSES % % %".format(\Tutti.asClass, \TuttiClock.asClass, SCDoc.documents["Classes/TuttiClock"] !? { |d| d.isUndocumentedClass.not }).postln; 0.exit;'
grep -q "^TUTTI-CLASSES Tutti TuttiClock true" "$WORK/run.out" ||
    { tail -20 "$WORK/run.out"; fail "after Quarks.install, sclang did not find the classes and their help"; }
echo "ok: Quarks.install(\"sc\") installs the quark; a new sclang has Tutti, TuttiClock and their help"
