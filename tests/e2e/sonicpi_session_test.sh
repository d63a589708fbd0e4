#!/usr/bin/env bash
# Three real headless Sonic Pi 3.2 servers (Debian sonic-pi-server), each
# with its own ports and its own scsynth started through the tutti wrapper
# (`tutti sonicpi install`), one hub; each runs its part of
# examples/sonicpi-trio (live_loops, samples, with_fx) with tutti_join and
# tutti_sync. tests/e2e/sonicpi/session.py fails unless the journals are
# identical, every part is in every server's tree, every recording has sound,
# no Sonic Pi reports an error, no scsynth plays late or fails (other than
# Sonic Pi's own double frees at stop), the parts start on the same bar line
# (within 2 ms) and stay on one beat grid, a member that stops, plays again,
# leaves and joins again touches only its own part, and a Sonic Pi that quits
# and starts again mid-session joins again with every part on its server.
# Skips (exit 0) when Sonic Pi, Ruby, scsynth, JACK or the plugin are missing.
set -u
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PLUGIN_DIR=${TUTTI_PLUGIN_DIR:-$(cd "$(dirname "$TUTTI")" && pwd)/plugin}
for tool in ruby scsynth jackd jack_wait python3; do
    command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/deps.sh installs it)"; exit 0; }
done
[ -f /usr/lib/sonic-pi/app/server/ruby/bin/sonic-pi-server.rb ] ||
    { echo "SKIP: Sonic Pi is not installed (Debian sonic-pi-server; scripts/deps.sh)"; exit 0; }
[ -f "$PLUGIN_DIR/TuttiProxy.so" ] || { echo "SKIP: no plugin at $PLUGIN_DIR"; exit 0; }
"$TUTTI" sonicpi --help >/dev/null 2>&1 || { echo "SKIP: this tutti has no sonicpi command"; exit 0; }

# install / status / uninstall on a scratch home leave the init file as it was
H="$WORK/home"
mkdir -p "$H/.sonic-pi"
printf 'use_debug false\n' >"$H/.sonic-pi/init.rb"
"$TUTTI" sonicpi install --home "$H" --plugin-dir "$PLUGIN_DIR" --ext "$TOP/sonicpi-ext" >/dev/null ||
    fail "tutti sonicpi install failed"
grep -q "SonicPi::Lang::Tutti.attach" "$H/.sonic-pi/init.rb" || fail "no hook in init.rb"
[ -x "$H/.sonic-pi/tutti/bin/scsynth" ] || fail "no scsynth wrapper"
"$TUTTI" sonicpi install --home "$H" --plugin-dir "$PLUGIN_DIR" --ext "$TOP/sonicpi-ext" >/dev/null
[ "$(grep -c 'SonicPi::Lang::Tutti.attach' "$H/.sonic-pi/init.rb")" = 1 ] || fail "install twice gave two hooks"
"$TUTTI" sonicpi status --home "$H" >/dev/null || fail "tutti sonicpi status says not installed"
"$TUTTI" sonicpi uninstall --home "$H" >/dev/null || fail "tutti sonicpi uninstall failed"
[ "$(cat "$H/.sonic-pi/init.rb")" = "use_debug false" ] || fail "uninstall did not restore init.rb"
[ ! -e "$H/.sonic-pi/tutti" ] || fail "uninstall left ~/.sonic-pi/tutti"
ok "install, status and uninstall"

# The session takes one to two and a half minutes. TUTTI_SONICPI_SESSION=0
# leaves it out (the sanitizer stages of scripts/test-all.sh do: the plugin
# inside Sonic Pi's scsynth is never built with a sanitizer).
if [ "${TUTTI_SONICPI_SESSION:-1}" = 0 ]; then
    echo "SKIP: the three-Sonic-Pi session (TUTTI_SONICPI_SESSION=0)"
    exit 0
fi

# the session: bounded (the script stops itself; run_bounded in case it hangs)
run_bounded 420 python3 "$TOP/tests/e2e/sonicpi/session.py" --tutti "$TUTTI" \
    --plugin-dir "$PLUGIN_DIR" --out "$WORK/session" >"$WORK/session.log" 2>&1
rc=$?
grep -v '^{' "$WORK/session.log"
[ $rc = 0 ] || fail "the Sonic Pi session did not hold (see above)"
ok "three Sonic Pi servers in one session: identical journals, every part everywhere, no errors, nothing late, one bar grid; stop, leave, rejoin and a restart touch only their own part"
