#!/usr/bin/env bash
# Builds and runs every test: unit and simulation tests, end-to-end tests over
# real sockets, a compile of every build type with GCC and Clang, sanitizer
# builds (address+undefined, thread), the Debian package installed and played
# from, the Bela (armhf) cross build (the tutti program, the scsynth plugin,
# the stage node) with its unit tests under qemu, and a short fuzzing run.
# Every build treats warnings
# as errors (TUTTI_WERROR=ON); a user's or packager's build does not.
# TUTTI_QUICK=1 skips everything after the first stage's tests.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)
stage() { printf '\n=== %s (%s, %d s in) ===\n' "$*" "$(date +%T)" "$SECONDS"; }

stage "dependencies"
if [ "${TUTTI_QUICK:-0}" = 1 ]; then bash scripts/deps.sh; else bash scripts/deps.sh --armhf; fi

stage "build and test (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUTTI_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

[ "${TUTTI_QUICK:-0}" = 1 ] && exit 0

# GCC and Clang warn differently at each optimisation level (GCC's
# -Wformat-truncation and -Wmaybe-uninitialized only with optimisation), so
# the product (library, tutti, plugin) is compiled in every build type with
# both; no tests are built or run here. Each build's output is shown only
# when it fails.
stage "compile every build type with GCC and Clang"
for cc in gcc clang; do
    cxx=g++
    [ "$cc" = clang ] && cxx=clang++
    for type in Debug Release RelWithDebInfo MinSizeRel; do
        dir=build-types/$cc-$type
        start=$SECONDS
        cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_C_COMPILER="$cc" \
              -DCMAKE_CXX_COMPILER="$cxx" -DTUTTI_WERROR=ON -DTUTTI_BUILD_TESTS=OFF >/dev/null
        if ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
            cat "$dir/build.log"
            echo "$cc $type: the build failed"
            exit 1
        fi
        echo "$cc $type: compiled in $((SECONDS - start)) s"
    done
done

# The packager's view: a Release build for /usr, a user install and its
# uninstall, the Debian package installed here and the main job run from the
# installed files only, then the package removed (scripts/package-check.sh).
stage "Debian package: build, install, play from the installed files, remove"
# with a /dev/shm of its own, as the end-to-end tests (tests/e2e/private-shm.sh)
bash tests/e2e/private-shm.sh bash scripts/package-check.sh build-deb

# The sanitizer stages leave out the end-to-end tests built around real
# scsynth, sclang, Sonic Pi and Link servers: the plugin runs inside scsynth,
# which never loads a sanitizer runtime, so there only the tutti program
# would be checked, and the shorter plugin tests kept here (plugin_feed,
# plugin_solo, guard, join_load) already drive its join, status and control
# commands; the plugin's own code runs sanitized in its unit tests
# (tutti_proxy). This keeps the whole run under an hour.
SCSYNTH_E2E='e2e\.(sclang|sonicpi|ugen|link_plugin|plugin_session|trio_solo|eval_smoke|server_check)|sc\.quark'

stage "address + undefined sanitizers"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
      -DTUTTI_SANITIZER=address -DTUTTI_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"
export TUTTI_SONICPI_SESSION=0 # Sonic Pi's scsynth runs the plugin, never sanitized
TUTTI_SIM_SEEDS=3 ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" \
    -E "$SCSYNTH_E2E"
cmake -S . -B build-ubsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
      -DTUTTI_SANITIZER=undefined -DTUTTI_WERROR=ON >/dev/null
cmake --build build-ubsan -j"$jobs"
# The undefined-behaviour build runs the unit tests and the end-to-end tests
# that drive the engines, the wire and the handshake with real and hostile
# peers; the Link bridges and the guard run under the address and thread
# sanitizers.
TUTTI_SIM_SEEDS=3 ctest --test-dir build-ubsan --output-on-failure -j"$jobs" \
    -E "$SCSYNTH_E2E|e2e\.(link|guard)_test"


stage "thread sanitizer"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
      -DTUTTI_SANITIZER=thread -DTUTTI_WERROR=ON >/dev/null
cmake --build build-tsan -j"$jobs"
TUTTI_SIM_SEEDS=2 TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
    -E "$SCSYNTH_E2E"

stage "Bela: armhf cross build, unit tests under qemu-arm"
cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/armhf-toolchain.cmake \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUTTI_WERROR=ON >/dev/null
cmake --build build-armhf -j"$jobs"
file build-armhf/tutti | grep -q "ARM, EABI5" || { echo "not an armhf binary"; exit 1; }
# The scsynth plugin for Bela's scsynth (32-bit: reply contexts through
# plugin/ctxmap.c); its unit tests and the stage node's (hw.*) run below.
file build-armhf/plugin/TuttiProxy.so | grep -q "ARM, EABI5" || { echo "no armhf plugin"; exit 1; }
# two seeds per simulated case (core.clock_test's checks over all of a
# profile's seeds want two; under qemu the simulations are 20-30 times
# slower than here): this stage checks that the code runs on armhf, the
# seeds' statistics are the native stages'
TUTTI_SIM_SEEDS=2 ctest --test-dir build-armhf --output-on-failure -j"$jobs" -L unit

stage "fuzzing the wire decoder (short run)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTUTTI_FUZZ=ON -DTUTTI_BUILD_NET=OFF \
      -DTUTTI_BUILD_TESTS=OFF -DTUTTI_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
bash tests/fuzz/run.sh build-fuzz 30

stage "all stages passed"
