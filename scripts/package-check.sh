#!/usr/bin/env bash
# The packager's checks (a stage of scripts/test-all.sh, a few minutes):
#   1. a Release build configured for /usr, as Debian's package is;
#   2. `cmake --install` into a fresh prefix laid out as a user's ~/.local
#      (the plugin in the user's SuperCollider Extensions folder, where
#      scsynth without -U must load it), then `cmake --build --target
#      uninstall`: no file may be left;
#   3. `cpack -G DEB`: the package, its dependencies on Debian 12 packages;
#   4. the package installed on this machine (apt-get, as root or through
#      sudo), then, from the installed files only (another folder, the
#      build trees out of PATH): `tutti --version`, scsynth loading the
#      installed plugin from its own plugin folder (no -U), and the main job,
#      `tutti play`: a three-member local session that must be COHERENT,
#      with every client served and no FAILURE;
#   5. the package removed: none of its files may be left.
# The package is removed on any exit, so nothing of it stays installed.
#   scripts/package-check.sh [BUILD_DIR]     (default build-deb)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build-deb}
jobs=$(nproc)
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tutti-pkg.XXXXXX")
installed=0
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ "$installed" = 1 ]; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -qq tutti >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package-check: FAIL: $*"; exit 1; }

# scsynth_loads PLUGIN HOME TUTTI: a scsynth with its default plugin folders
# (no -U: its own, /usr/share/SuperCollider/Extensions and HOME's
# ~/.local/share/SuperCollider/Extensions) loads the plugin: its proxy
# answers TUTTI's `status` (on JACK's dummy driver, a server of its own).
scsynth_loads() {
    local plugin=$1 home=$2 tutti=$3 jack=tutti-pkgcheck port proxy="" mode p
    export JACK_DEFAULT_SERVER=$jack JACK_NO_START_SERVER=1
    jackd -r -d dummy -r 48000 -p 256 >"$work/jackd.log" 2>&1 &
    pids+=($!)
    jack_wait -w -t 10 >/dev/null 2>&1 || fail "jackd did not start: $(cat "$work/jackd.log")"
    port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    HOME=$home TUTTI_PROXY_PORT=0 scsynth -u "$port" -B 127.0.0.1 >"$work/scsynth.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 300); do
        proxy=$(grep -o 'proxy listening on 127\.0\.0\.1:[0-9]*' "$work/scsynth.log" | head -1 | cut -d: -f2 || true)
        [ -n "$proxy" ] && break
        sleep 0.1
    done
    [ -n "$proxy" ] || fail "scsynth did not load $plugin: $(tail -5 "$work/scsynth.log")"
    mode=$("$tutti" status --proxy "$proxy" --json | grep -o '"mode":"[a-z]*"' || true)
    [ "$mode" = '"mode":"solo"' ] || fail "the plugin did not answer tutti status: $mode"
    echo "scsynth (no -U) loaded $plugin: proxy on $proxy, $mode"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    rm -f /dev/shm/*"$jack"* "/dev/shm/SuperColliderServer_$port" 2>/dev/null || true
    unset JACK_DEFAULT_SERVER JACK_NO_START_SERVER
}

# ------------------------------------------------------------ 1. the build
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DTUTTI_BUILD_TESTS=OFF -DTUTTI_WERROR=ON >/dev/null
cmake --build "$dir" -j"$jobs" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "the build failed"; }
echo "built $dir (Release, prefix /usr)"

# ------------------------------------- 2. a user install, and the uninstall
home=$work/home
cmake --install "$dir" --prefix "$home/.local" >"$work/install.log"
ext=$home/.local/share/SuperCollider/Extensions/tutti
[ -f "$ext/TuttiProxy.so" ] || fail "a user install put no plugin in $ext"
[ -x "$home/.local/bin/tutti" ] || fail "a user install put no tutti in ~/.local/bin"
[ -f "$home/.local/share/man/man1/tutti-join.1" ] || fail "no man page tutti-join(1)"
[ -f "$home/.local/share/tutti/sonicpi-ext/tutti.rb" ] || fail "no Sonic Pi extension"
[ -f "$home/.local/share/tutti/scripts/localsession.py" ] || fail "no local session script"
n=$(find "$home" -type f | wc -l)
echo "user install: $n files under a fresh ~/.local; the plugin in $ext"
scsynth_loads "$ext/TuttiProxy.so" "$home" "$home/.local/bin/tutti"
cmake --build "$dir" --target uninstall >/dev/null
left=$(find "$home" -type f -o -type l | head -5)
[ -z "$left" ] || fail "uninstall left files behind: $left"
own=$(cd "$home" && find . -path '*tutti*' | head -5)
[ -z "$own" ] || fail "uninstall left tutti's folders behind: $own"
echo "uninstall: all $n files and tutti's folders removed (left: $(cd "$home" && find . -mindepth 1 -type d | wc -l) empty shared folders such as .local/bin)"

# ---------------------------------------------------------- 3. the package
rm -f "$dir"/tutti_*.deb
(cd "$dir" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(realpath "$(ls "$dir"/tutti_*.deb)")
depends=$(dpkg-deb -f "$deb" Depends)
echo "package: $(basename "$deb"), $(($(stat -c %s "$deb") / 1024)) KiB; Depends: $depends"
for want in libuv1 libnng1 libsodium23 liblo7 supercollider-server python3 python3-liblo jackd2; do
    grep -q "$want" <<<"$depends" || fail "the package does not depend on $want"
done
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' >"$work/files"
grep -qx /usr/lib/SuperCollider/plugins/TuttiProxy.so "$work/files" || fail "the plugin is not in scsynth's plugin folder"

# --------------------------------------------- 4. installed, and run from it
$sudo dpkg -r tutti >/dev/null 2>&1 || true
installed=1
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1 \
    || { cat "$work/apt.log"; fail "apt-get could not install the package"; }
cd "$work"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=$work/home
[ "$(command -v tutti)" = /usr/bin/tutti ] || fail "tutti is not /usr/bin/tutti: $(command -v tutti)"
tutti --version || fail "tutti --version"
man -w tutti-play >/dev/null 2>&1 || [ -f /usr/share/man/man1/tutti-play.1.gz ] || [ -f /usr/share/man/man1/tutti-play.1 ] \
    || fail "no man page for tutti play"

scsynth_loads /usr/lib/SuperCollider/plugins/TuttiProxy.so "$HOME" /usr/bin/tutti

# The main job from the installed files. What is judged is what the package
# must give: the session runs, is coherent, and every member's client gets
# what it expected with no FAILURE; late bundles, which depend on how busy
# the machine is, are shown (the full --check is scripts/run-session.sh's).
tutti play --bars 2 --out "$work/session" >"$work/play.log" 2>&1 \
    || { cat "$work/play.log"; fail "tutti play (the installed main job) failed"; }
grep -q "^coherence: COHERENT" "$work/play.log" || { cat "$work/play.log"; fail "the session was not coherent"; }
[ "$(grep -c '^member[0-9].*FAILURE 0, client ok' "$work/play.log")" = 3 ] \
    || { cat "$work/play.log"; fail "a member's server printed FAILURE or its client did not get what it expected"; }
grep -q "^tutti play: /usr/share/tutti/scripts/localsession.py, plugin /usr/lib/SuperCollider/plugins$" \
    "$work/play.log" || fail "tutti play did not use the installed files: $(grep '^tutti play:' "$work/play.log")"
grep '^tutti play:' "$work/play.log"
grep '^member[0-9]' "$work/play.log" | sed 's/^/  /'
grep -E '^(coherence|problems):' "$work/play.log"

# ------------------------------------------------------------ 5. removed
DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -qq tutti >/dev/null
installed=0
left=$(while read -r f; do if [ -e "$f" ]; then echo "$f"; fi; done <"$work/files" | head -5)
[ -z "$left" ] || fail "removing the package left files behind: $left"
echo "removed: none of the package's $(wc -l <"$work/files") files is left"
echo "package-check: passed"
