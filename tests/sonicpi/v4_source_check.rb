# What the Sonic Pi extension relies on in Sonic Pi 4, checked against a
# Sonic Pi 4 source tree (Sonic Pi 4 is not packaged in Debian 12, so it
# cannot be run here; docs/sonicpi.md, "Sonic Pi 4.x"):
#
#   ruby tests/sonicpi/v4_source_check.rb PATH/TO/sonic-pi
#
# Each line names a structure tutti.rb or `tutti sonicpi install` uses and
# where Sonic Pi 4 defines it; "ok" or "MISSING". Exit 1 if anything is
# missing. Not part of ctest (it needs the source tree).
root = ARGV[0] or abort "usage: ruby #{$0} PATH/TO/sonic-pi (a Sonic Pi 4 source tree)"
ruby = File.join(root, "app", "server", "ruby")

CHECKS = [
  # the language class the extension extends, and how init.rb is run
  ["bin/spider-server.rb", /name = "SonicPiLang"/, "the language class is SonicPiLang"],
  ["bin/spider-server.rb", /klass\.send\(:include, SonicPi::Lang::Core\)/,
   "sleep/use_bpm/with_bpm come from an included module (a prepended module sees them first)"],
  ["bin/spider-server.rb", /__spider_eval\(File\.read\(SonicPi::Paths\.init_path\)/,
   "init.rb is evaluated by the runtime (self is the runtime: attach(self))"],
  ["paths.rb", %r{def self\.init_path\s+File\.absolute_path\("\#\{config_path\}/init\.rb"\)},
   "the init file is config/init.rb"],
  ["paths.rb", %r{audio-settings\.toml}, "config/audio-settings.toml"],
  ["paths.rb", /when :linux\s+"scsynth"/, "Linux: scsynth from PATH (the wrapper works)"],
  ["paths.rb", %r{def self\.scsynth_macos_plugin_path}, "macOS: a bundled plugin folder (-U)"],
  # audio-settings.toml's scsynth_opts, option by option
  ["bin/daemon.rb", /scsynth_opts_a = Shellwords\.split\(toml_opts_hash\.fetch\(:scsynth_opts/,
   "scsynth_opts is split like a shell line"],
  ["bin/daemon.rb", /scsynth_opts = scsynth_opts_a\.each_slice\(2\)\.to_h/,
   "scsynth_opts pairs replace the defaults option by option (-U must name both folders)"],
  ["bin/daemon.rb", /\.merge\(OS_SPECIFIC_OPTS\)\.merge\(opts\)\.merge\(scsynth_opts\)/,
   "scsynth_opts is merged last"],
  # thread time and tempo
  ["lib/sonicpi/lang/core.rb", /def sleep\(beats\)/, "sleep(beats)"],
  ["lib/sonicpi/lang/core.rb", /def use_bpm\(bpm, &block\)/, "use_bpm(bpm, &block)"],
  ["lib/sonicpi/lang/core.rb", /def with_bpm\(bpm, &block\)/, "with_bpm(bpm, &block)"],
  ["lib/sonicpi/lang/core.rb", /def current_sched_ahead_time/, "current_sched_ahead_time"],
  ["lib/sonicpi/lang/core.rb", /def set_sched_ahead_time!\(sat\)/, "set_sched_ahead_time!"],
  ["lib/sonicpi/lang/core.rb", /new_vt = __get_spider_time\.to_f/, "sleep moves the spider time"],
  ["lib/sonicpi/runtime.rb", /def __get_spider_bpm\b/, "__get_spider_bpm (bpm x density)"],
  ["lib/sonicpi/runtime.rb", /__system_thread_locals\.get\(:sonic_pi_spider_bpm\) \* __get_spider_time_density/,
   "the thread's bpm is :sonic_pi_spider_bpm times the density"],
  ["lib/sonicpi/runtime.rb", /def __get_spider_time_density/, "__get_spider_time_density"],
  ["lib/sonicpi/runtime.rb", /sleep_time = beat_delta \* sleep_mul/,
   "a sleep outside Link mode moves time by beats x 60 / bpm"],
  ["lib/sonicpi/runtime.rb", /def __change_spider_time_and_beat!\(new_time = nil, new_beat = nil\)/,
   "__change_spider_time_and_beat!(time, beat)"],
  ["lib/sonicpi/runtime.rb", /:sonic_pi_spider_time, new_time\.to_r/, "logical time is a Rational"],
  ["lib/sonicpi/util.rb", /def __system_thread_locals\(t = Thread\.current\)/, "__system_thread_locals"],
  # the studio and the scsynth link
  ["lib/sonicpi/studio.rb", /attr_reader :synth_group, :fx_group, :mixer_group, :monitor_group, :mixer_id, :mixer_bus, :mixer, :rand_buf_id/,
   "the studio's groups, mixer and buffers are public"],
  ["lib/sonicpi/scsynthexternal.rb", /@osc_server\.send_ts\(ts, @hostname, @send_port/,
   "bundles go to @send_port (set to the proxy on macOS/Windows)"],
  ["lib/sonicpi/lang/support/docsystem.rb", /module DocSystem/, "SonicPi::Lang::Support::DocSystem (doc entries)"],
]

missing = 0
CHECKS.each do |file, re, what|
  path = File.join(ruby, file)
  text = File.exist?(path) ? File.read(path) : ""
  ok = text.match?(re)
  missing += 1 unless ok
  puts "#{ok ? "ok" : "MISSING"}: #{what} (#{file})"
end
# the runtime's instance variable the extension reaches the studio by
rt = File.read(File.join(ruby, "lib/sonicpi/lang/sound.rb")) rescue ""
ok = rt.include?("@mod_sound_studio")
missing += 1 unless ok
puts "#{ok ? "ok" : "MISSING"}: @mod_sound_studio, the runtime's studio (lib/sonicpi/lang/sound.rb; private)"
puts missing.zero? ? "all present" : "#{missing} missing"
exit(missing.zero? ? 0 : 1)
