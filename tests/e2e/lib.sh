# Shared by the end-to-end tests: process bookkeeping and checks.
# Every process a test starts is recorded; on exit (any exit) exactly those
# are stopped, by pid, and the scratch folder is removed unless the test failed.
#
# Time limits come from the programs themselves (the hub's --duration, a
# member's --timeout) or from run_bounded, never from coreutils `timeout`: as
# the parent it resumes a stopped child at once, and LeakSanitizer stops the
# process it checks at exit with ptrace, so a sanitizer build under `timeout`
# can hang for good at exit.

TUTTI=${1:?usage: bash $0 path/to/tutti}
# Sanitizer builds: a known leak inside NNG 1.5 is not ours (see lsan.supp).
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tutti-e2e.XXXXXX")
PIDS=()
FAILED=0

cleanup() {
    local p i
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    # up to 3 s to finish (a JACK server killed outright stays in JACK's registry)
    for i in $(seq 30); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ "$FAILED" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept for inspection: $WORK"; fi
}
trap cleanup EXIT

fail() {
    FAILED=1
    echo "FAIL: $*"
    exit 1
}

ok() { echo "ok: $*"; }

# start NAME CMD...: run in the background, stdout to NAME.out, stderr to NAME.log
start() {
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PIDS+=($!)
    eval "PID_$name=$!"
}

# run_bounded SECONDS CMD...: run CMD in the foreground; stop it if it takes
# longer than SECONDS. Returns its exit status.
run_bounded() {
    local secs=$1 pid dog rc
    shift
    "$@" &
    pid=$!
    PIDS+=($pid)
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        sleep "$secs" &
        s=$!
        wait "$s"
        kill -TERM "$pid" 2>/dev/null
    ) &
    dog=$!
    wait "$pid"
    rc=$?
    kill -TERM "$dog" 2>/dev/null
    wait "$dog" 2>/dev/null
    return $rc
}

# sanitized: true in the address and thread sanitizer stages of
# scripts/test-all.sh (they set ASAN_OPTIONS / TSAN_OPTIONS), where every
# process runs several times slower: a test whose margins are timing (an L
# that several busy processes must stay under) scales them there.
sanitized() { [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; }

# jack_rt: jackd's flag for real-time scheduling (-R, SCHED_FIFO, as JACK
# runs on a stage machine) where the system allows it, else -r (normal
# priority); -r under the sanitizers, whose audio threads run several times
# slower and must not hold the two cores at real-time priority.
jack_rt() {
    if ! sanitized && chrt -f 10 true 2>/dev/null; then echo -R; else echo -r; fi
}

# The JACK server name of this test: fixed, not random. JACK's registry holds
# at most 8 servers and frees the entry of one that died only when a server
# of the same name starts, so random names would fill it up over many runs.
jack_name() {
    echo "tutti-$(basename "$0" .sh)"
}

# start_jackd ARGS...: this test's JACK server (ARGS after "jackd", e.g. -r -d
# dummy ...) under its fixed name. Another run of the same test may hold the
# name: then wait for it to finish (at most 3 minutes) rather than share its
# server or clear its shared memory.
start_jackd() {
    export JACK_DEFAULT_SERVER=$(jack_name) JACK_NO_START_SERVER=1
    local i
    for i in $(seq 90); do
        start jackd jackd "$@"
        sleep 0.5
        if kill -0 "$PID_jackd" 2>/dev/null; then
            jack_wait -w -t 10 >/dev/null 2>&1 && kill -0 "$PID_jackd" 2>/dev/null && return 0
            cat "$WORK/jackd.log"
            fail "jackd did not start"
        fi
        grep -q "already active" "$WORK/jackd.log" "$WORK/jackd.out" 2>/dev/null ||
            { cat "$WORK/jackd.log"; fail "jackd did not start"; }
        [ "$i" = 1 ] && echo "waiting for another run holding the JACK server $JACK_DEFAULT_SERVER"
        sleep 2
    done
    fail "the JACK server $JACK_DEFAULT_SERVER stayed busy for 3 minutes"
}

# sc_port: a port free for both UDP and TCP, for a scsynth; sets PORT, and
# clears on exit what a scsynth and this test's JACK server leave in shared
# memory when they are killed rather than quit.
sc_port() {
    PORT=$(python3 -c "import sys; sys.path.insert(0, '$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/osc" && pwd)')
import tuttilocal; print(tuttilocal.free_port())") || fail "no free port"
    SHM=/dev/shm/SuperColliderServer_$PORT
    trap 'cleanup; rm -f "$SHM" /dev/shm/jack_sem.*_"${JACK_DEFAULT_SERVER}"_* /dev/shm/jack_"${JACK_DEFAULT_SERVER}"_*' EXIT
}

# A hub on a port of its own choosing; sets HUB_URL (an earlier hub's address
# file is removed first: it must not be taken for this one's).
start_hub() {
    rm -f "$WORK/hub.url"
    start hub "$TUTTI" hub --listen tcp://127.0.0.1:0 --url-file "$WORK/hub.url" \
        --duration 300 --quiet "$@"
    local i
    for i in $(seq 200); do
        [ -s "$WORK/hub.url" ] && break
        kill -0 "$PID_hub" 2>/dev/null || { cat "$WORK/hub.log"; fail "the hub did not start"; }
        sleep 0.05
    done
    HUB_URL=$(cat "$WORK/hub.url")
    [ -n "$HUB_URL" ] || fail "the hub never said where it listens"
}

# start_trio N RATE: members anna, bruno and carla each play N events at RATE/s,
# wait for all three (3 x N events) and journal what they hear.
start_trio() {
    local n=$1 rate=$2 m
    for m in anna bruno carla; do
        start "$m" "$TUTTI" member --hub "$HUB_URL" --name "$m" --events "$n" --rate "$rate" \
            --wait-members 3 --expect $((3 * n)) --journal "$WORK/$m.journal" --quiet
    done
}

# wait_joined K: until the hub has admitted K members (at most 10 s).
wait_joined() {
    local i
    for i in $(seq 200); do
        [ "$(grep -c 'joined as member' "$WORK/hub.log")" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "only $(grep -c 'joined as member' "$WORK/hub.log") of $1 members joined"
}

# wait_ok NAME: wait for a background process; fail unless it exited 0.
wait_ok() {
    local name=$1 pid rc
    pid=$(eval echo "\$PID_$name")
    wait "$pid"
    rc=$?
    if [ "$rc" -ge 128 ]; then
        tail -5 "$WORK/$name.log"
        fail "$name crashed (signal $((rc - 128)))"
    fi
    [ "$rc" = 0 ] || { tail -5 "$WORK/$name.log"; fail "$name exited with status $rc"; }
}

# stop_hub: SIGTERM the hub and check it ends cleanly.
stop_hub() {
    kill -0 "$PID_hub" 2>/dev/null || fail "the hub is gone before the end"
    kill -TERM "$PID_hub"
    wait_ok hub
}

# user_events FILE: test events (kind 0) in a journal
user_events() { awk '$4 == 0' "$1" | wc -l; }
# origins FILE: distinct origins of test events
origins() { awk '$4 == 0 { print $2 }' "$1" | sort -u | wc -l; }
