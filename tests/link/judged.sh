# Sourced by the Link bridge's end-to-end tests (tests/e2e/link_test.sh,
# link_plugin_test.sh).
#
# cities_judged OUT TRACE_DIR JUDGE CITIES_ARGS...: run tests/link/cities.sh
# with CITIES_ARGS and --trace TRACE_DIR, its output into OUT, print it, and
# hand it to the shell function JUDGE: 0 passes, 1 fails, 3 could not judge
# the bridge (a missing tempo switch met a race the bridge cannot see:
# tests/link/races.py). A run that could not judge runs once more; a second
# one fails. Returns the test's exit status.
cities_judged() {
    local out=$1 tr=$2 judge=$3 attempt rc
    shift 3
    for attempt in 1 2; do
        rm -rf "${tr:?}"/*
        bash "$(dirname "${BASH_SOURCE[0]}")/cities.sh" "$@" --trace "$tr" >"$out" || {
            cat "$out"
            echo "FAIL: the cities run did not finish"
            return 1
        }
        cat "$out"
        "$judge"
        rc=$?
        [ "$rc" = 0 ] && return 0
        [ "$rc" = 3 ] || return 1
        [ "$attempt" = 2 ] && {
            echo "FAIL: two runs in a row could not judge the bridge"
            return 1
        }
        echo "the run could not judge the bridge: the run once more"
    done
}
