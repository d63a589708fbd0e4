#!/usr/bin/env bash
# The beat UGens over a long run: three scsynth servers with the plugin in one
# session on JACK's dummy driver, each recording itself; every beat a
# TuttiTrig click and a note scheduled for it (tests/e2e/ugen_sync.py). Prints
# how far apart notes and clicks are in each server's recording, how far apart
# the three recordings' click trains are (and scsynth's own notes), each
# server's anchoring figures (the block line's error just before each
# re-anchoring, its rate against nominal) and JACK's xruns; the last line is
# one JSON object. docs/benchmarks.md has the figures.
#
#   bash scripts/ugen-drift.sh [SECONDS] [jack] [sclang]
#       (default 600; CI runs 8 s of it: e2e.ugen_sync_test; `jack`: the
#       servers run with TUTTI_UGEN_CLOCK=jack, the UGens on JACK's clock;
#       `sclang`: the notes come from a Pbind on a TuttiClock in sclang)
#
# Every server's clicks and notes are also recorded on one JACK timeline
# (jack_rec) and compared beat by beat, apart near jackd's xruns.
#
# Needs a build (build/tutti, build/plugin/TuttiProxy.so), scsynth and jackd.
set -u
SECONDS_RUN=${1:-600}
CLOCK_ARG=()
for w in "${@:2}"; do
    case $w in
    jack) CLOCK_ARG+=(--jack-clock) ;;
    sclang) CLOCK_ARG+=(--sclang) ;;
    *) echo "usage: $0 [SECONDS] [jack] [sclang]" >&2; exit 2 ;;
    esac
done
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tutti-ugen-drift.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] || rm -f "$WORK"/s?.wav "$WORK"/common.wav
    echo "work folder: $WORK" >&2
}
trap cleanup EXIT
# TUTTI_JACK_NAME: the JACK server's name (several runs side by side)
export JACK_DEFAULT_SERVER=${TUTTI_JACK_NAME:-tutti-ugen-drift} JACK_NO_START_SERVER=1
# jackd at real-time priority (SCHED_FIFO, as JACK runs on a stage machine)
# where the system allows it; TUTTI_JACK_RT=0: at normal priority
JACK_RT_ARG=-r
[ "${TUTTI_JACK_RT:-1}" != 0 ] && chrt -f 10 true 2>/dev/null && JACK_RT_ARG=-R
jackd $JACK_RT_ARG -d dummy -r 48000 -p 256 >"$WORK/jackd.log" 2>&1 &
PIDS+=($!)
jack_wait -w -t 10 >/dev/null || { echo "jackd did not start" >&2; exit 1; }
"$BUILD/tutti" hub --listen tcp://127.0.0.1:0 --url-file "$WORK/hub.url" --session ugens \
    --horizon 100 --quiet >"$WORK/hub.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do [ -s "$WORK/hub.url" ] && break; sleep 0.1; done
python3 "$TOP/tests/e2e/ugen_sync.py" --tutti "$BUILD/tutti" --plugin-dir "$BUILD/plugin" \
    --work "$WORK" --hub "$(cat "$WORK/hub.url")" --seconds "$SECONDS_RUN" --measure \
    --jackd-log "$WORK/jackd.log" "${CLOCK_ARG[@]}" \
    >"$WORK/run.log"
rc=$?
cat "$WORK/run.log"
echo "JACK xruns during the run: $(grep -c XRun "$WORK/jackd.log")"
tail -1 "$WORK/run.log"
exit $rc
