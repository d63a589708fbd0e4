#!/usr/bin/env bash
# Three real headless Sonic Pi 3.2 servers keep time in one session
# (tests/e2e/sonicpi/timing.py): live_loops of 1, 2 and 4 bars with
# tutti_sync at the top (samples, with_fx, a long controlled note), a tempo
# change (tutti_bpm 132) from the conductor halfway, then two members leave,
# play alone and run the same code again. Fails on any silent bar, any note
# off the session's grid (the new tempo's from the agreed beat), any `late`
# line in a scsynth log, any Sonic Pi error, anything of a part left on the
# others' servers after it left, or a journal lost.
# CI plays 30 s; the acceptance run is 3 minutes (docs/sonicpi.md):
#   TUTTI_SONICPI_PLAY=180 bash tests/e2e/sonicpi_timing_test.sh build/tutti
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
# Sonic Pi 4 with a bundled scsynth: the plugin through audio-settings.toml;
# a scsynth_opts of the user's own is left alone; uninstall restores the file
H="$WORK/home4"
mkdir -p "$H/.sonic-pi/config"
printf 'num_inputs = 2\n' >"$H/.sonic-pi/config/audio-settings.toml"
"$TUTTI" sonicpi install --home "$H" --plugin-dir "$PLUGIN_DIR" --ext "$TOP/sonicpi-ext" \
    --bundled-scsynth "/opt/Sonic Pi/plugins" >/dev/null || fail "install --bundled-scsynth failed"
ruby -rshellwords -e 'o = File.read(ARGV[0])[/^scsynth_opts = "(.*)"$/, 1] or exit 1
h = Shellwords.split(o).each_slice(2).to_h
exit(h["-U"] == ARGV[1] + ":/opt/Sonic Pi/plugins" && h["-b"].to_i >= 32768 ? 0 : 1)' \
    "$H/.sonic-pi/config/audio-settings.toml" "$(cd "$PLUGIN_DIR" && pwd -P)" ||
    fail "audio-settings.toml does not load the plugin as Sonic Pi 4 reads it: $(cat "$H/.sonic-pi/config/audio-settings.toml")"
grep -q "SonicPi::Lang::Tutti.attach" "$H/.sonic-pi/config/init.rb" || fail "no hook in config/init.rb"
"$TUTTI" sonicpi uninstall --home "$H" >/dev/null || fail "uninstall failed"
[ "$(cat "$H/.sonic-pi/config/audio-settings.toml")" = "num_inputs = 2" ] || fail "uninstall did not restore audio-settings.toml"
printf 'scsynth_opts = "-z 128"\n' >>"$H/.sonic-pi/config/audio-settings.toml"
"$TUTTI" sonicpi install --home "$H" --plugin-dir "$PLUGIN_DIR" --ext "$TOP/sonicpi-ext" \
    --bundled-scsynth /x >/dev/null 2>"$WORK/own.err" && fail "install wrote over the user's scsynth_opts"
grep -q "add this to it by hand" "$WORK/own.err" || fail "install did not say what to merge by hand"
[ "$(grep -c scsynth_opts "$H/.sonic-pi/config/audio-settings.toml")" = 1 ] || fail "two scsynth_opts"
ok "Sonic Pi 4 with a bundled scsynth: install writes audio-settings.toml, leaves the user's own scsynth_opts, uninstall restores it"

# the sanitizer stages leave the Sonic Pi sessions out (the plugin inside
# Sonic Pi's scsynth is never built with a sanitizer)
if [ "${TUTTI_SONICPI_SESSION:-1}" = 0 ]; then
    echo "SKIP: the three-Sonic-Pi session (TUTTI_SONICPI_SESSION=0)"
    exit 0
fi
PLAY=${TUTTI_SONICPI_PLAY:-30}
run_bounded $((PLAY * 2 + 300)) python3 "$TOP/tests/e2e/sonicpi/timing.py" --tutti "$TUTTI" \
    --plugin-dir "$PLUGIN_DIR" --out "$WORK/timing" --play "$PLAY" >"$WORK/timing.log" 2>&1
rc=$?
grep -v '^{' "$WORK/timing.log"
[ $rc = 0 ] || fail "the Sonic Pi loops did not keep time (see above)"
ok "three Sonic Pi servers, ${PLAY} s: no silent bar, no note off the grid (the new tempo from the agreed beat), no late line, no error; leave and join again: nothing left behind, both journals"
