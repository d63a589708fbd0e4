# The extension's time keeping (sonicpi-ext/tutti.rb), in virtual time:
# tutti_sync, loops that follow the session's tempo, tempo changes heard
# from the feed, truly late threads, solo, and the feed's messages.
#
#   ruby tests/sonicpi/timing_test.rb [path/to/tutti.rb]
#
# A fake of the few things tutti.rb uses of Sonic Pi 3.2's language (thread
# locals, sched_ahead_time, and a `sleep` that moves the thread's logical
# time vt as Sonic Pi 3.2's does: vt += beats * seconds-per-beat) runs the
# real extension code. The wall clock is virtual: a thread "runs" at its
# logical time plus a lag the test chooses, and waiting for the feed moves
# the clock to the moment the thread would wake, delivering the feed's
# messages due by then. Each check prints "ok" or "FAIL"; exit 1 on any
# failure.
require "socket"

module SonicPi
  class Runtime; end
  class Version
    def initialize(*); end
  end
  module Lang
    module Support
      module DocSystem
        def self.included(base)
          base.extend(ClassMethods)
        end

        module ClassMethods
          def doc(**); end
        end
      end
    end
  end
end

load(ARGV[0] || File.expand_path("../../sonicpi-ext/tutti.rb", __dir__))
T = SonicPi::Lang::Tutti

$failures = 0
def check(what, ok, detail = "")
  puts "#{ok ? "ok" : "FAIL"}: #{what}#{detail.empty? ? "" : " (#{detail})"}"
  $failures += 1 unless ok
end

# ------------------------------------------------------------ the fakes

# The virtual wall clock; the newest one is the extension's clock.
class VClock
  attr_accessor :t

  def initialize(t)
    @t = t
    $clock = self
  end
end
T.clock = -> { $clock.t }
$stdout.sync = true

class FakeTL
  def initialize
    @vars = {}
    @local = {}
  end

  def get(k, dflt = nil)
    return @local[k] if @local.key?(k)
    @vars.key?(k) ? @vars[k] : dflt
  end

  def set(k, v)
    @local.delete(k)
    @vars[k] = v
  end

  def set_local(k, v)
    @vars.delete(k)
    @local[k] = v
  end
end

# A feed without a plugin: its grid comes from the test; waiting moves the
# virtual clock and delivers the messages due by then.
class VFeed < T::Feed
  attr_accessor :clock, :due

  def initialize(clock, mode: "session", horizon: 0.15)
    super(1, start: false)
    @clock = clock
    @due = [] # [local time, addr, args]
    session(mode, horizon, 0.25, 3, 1, 1, "conductor")
  end

  def deliver_due
    while (m = @due.min_by(&:first)) && m[0] <= @clock.t
      @due.delete(m)
      handle(m[1], m[2])
    end
  end

  def wait_until(_secs_max)
    Kernel.loop do
      deliver_due
      left = yield(@grid)
      break if left.nil? || left <= 0
      nxt = @due.map(&:first).min
      @clock.t = nxt && nxt < @clock.t + left ? nxt : @clock.t + left
    end
    @grid
  end

  def timeline_at(heard, seq, at, beat, bpm, quantum = 4.0)
    @due << [heard, "/tutti/timeline", [seq, at + T::NTP_EPOCH, at, beat, bpm, quantum, 1]]
  end

  # A change agreed: as the plugin does, the whole schedule again (the
  # timeline in force, then the change), one count of changes on.
  def agree(heard, at0, at, beat, bpm)
    timeline_at(heard, 1, at0, 0.0, 120.0)
    timeline_at(heard, 1, at, beat, bpm)
  end
end

class FakeLang
  attr_reader :played, :infos, :warnings
  attr_accessor :lag, :sat

  def initialize(clock, feed, vt, bpm: 120.0, sat: 0.5)
    @clock = clock
    @tl = FakeTL.new
    @tl2 = FakeTL.new
    @tl.set(:sonic_pi_spider_time, Time.at(Rational(vt)))
    @tl.set(:sonic_pi_spider_sleep_mul, 60.0 / bpm)
    @tl.set(:sonic_pi_spider_beat, 0)
    @sat = sat
    @lag = 0.0
    @played = []
    @infos = []
    @warnings = []
    @tutti_state = T::State.new
    @tutti_state.feed = feed
  end

  def __system_thread_locals
    @tl
  end

  def __thread_locals
    @tl2
  end

  def current_sched_ahead_time
    @sat
  end

  def set_sched_ahead_time!(s)
    @sat = s
  end

  def current_bpm
    60.0 / @tl.get(:sonic_pi_spider_sleep_mul)
  end

  def vt
    @tl.get(:sonic_pi_spider_time).to_f
  end

  # Sonic Pi 3.2's sleep: the logical time moves by beats * seconds per
  # beat; the thread wakes at the new time (plus its lag), never earlier.
  # sleeps of (almost) nothing: Sonic Pi warns "running slightly behind"
  # for them, as the thread woke a little after its time
  def tiny
    @tiny ||= 0
  end

  def sleep(beats)
    return if beats == 0
    @tiny = tiny + 1 if beats.abs < 1e-3
    nv = @tl.get(:sonic_pi_spider_time) + beats * @tl.get(:sonic_pi_spider_sleep_mul)
    @tl.set(:sonic_pi_spider_time, nv)
    @clock.t = [@clock.t, nv.to_f].max + @lag
  end

  # what `play` would do: a note at the thread's audio time, and the tempo
  # its durations would be scaled by
  def play
    @played << [vt + @sat, current_bpm]
  end

  # Sonic Pi 3.2's use_bpm and with_bpm
  def use_bpm(bpm)
    @tl.set(:sonic_pi_spider_sleep_mul, 60.0 / bpm)
  end

  def with_bpm(bpm)
    was = @tl.get(:sonic_pi_spider_sleep_mul)
    @tl.set(:sonic_pi_spider_sleep_mul, 60.0 / bpm)
    r = yield
    @tl.set(:sonic_pi_spider_sleep_mul, was)
    r
  end

  def __info(s, _style = 0)
    @infos << s
  end

  def __delayed_serious_warning(s)
    @warnings << s
  end

  def __tutti_proxy_port
    1
  end
end
FakeLang.include(T)
FakeLang.prepend(T::Tempo)

def grid_feed(clock, at0, bpm = 120.0, mode: "session")
  f = VFeed.new(clock, mode: mode)
  f.timeline_at(clock.t, 0, at0, 0.0, bpm)
  f.deliver_due
  f
end

T0 = 1_800_000_000.0 # beat 0 of the session (local wall time)
BAR = 2.0            # 120 bpm, 4 beats a bar

# ------------------------------------------------------------ the checks

# 1. A thread a few ms behind its logical time gets the bar line right at
#    its audio time, not the next one (the bug: it slept a whole bar).
c = VClock.new(T0 + 10 * BAR - 0.5 + 0.004)
f = grid_feed(c, T0)
sp = FakeLang.new(c, f, T0 + 10 * BAR - 0.5)
b = sp.tutti_sync
check "tutti_sync 4 ms behind takes the bar line at its audio time", b == 40.0 &&
      (sp.vt - (T0 + 10 * BAR - 0.5)).abs < 1e-9, "beat #{b}, moved #{((sp.vt - (T0 + 10 * BAR - 0.5)) * 1000).round(3)} ms"
check "no warning for a thread in time", sp.warnings.empty?

# 2. Loops of 1, 2 and 4 bars with tutti_sync at the top, their body one
#    loop length, threads lagging 0-300 ms (< sched_ahead - L): every
#    iteration on the next line, no bar lost, every note on the grid.
[1, 2, 4].each do |bars|
  c = VClock.new(T0 + 3.3)
  f = grid_feed(c, T0)
  sp = FakeLang.new(c, f, T0 + 3.3)
  rnd = Random.new(bars)
  starts = []
  200.times do
    sp.lag = rnd.rand * 0.3
    starts << sp.tutti_sync(bars)
    (4 * bars).times do
      sp.play
      sp.sleep 1
    end
  end
  gaps = starts.each_cons(2).map { |x, y| y - x }.uniq
  off = sp.played.count { |t, _| ((t - T0) / 0.5 - ((t - T0) / 0.5).round).abs > 1e-6 }
  check "#{bars}-bar loop: 200 iterations back to back", gaps == [4.0 * bars], "gaps #{gaps.inspect}"
  check "#{bars}-bar loop: every note on the beat grid", off == 0, "#{off} off"
  check "#{bars}-bar loop: no bar skipped, no warning",
        sp.warnings.empty? && sp.instance_variable_get(:@tutti_state).skipped == 0
  check "#{bars}-bar loop: tutti_sync on the line sleeps nothing", sp.tiny == 0, "#{sp.tiny} tiny sleeps"
end

# 3. A tempo change heard change_lead (1 s) before its bar: loops of 1, 2
#    and 4 bars following the session's tempo play the new tempo from that
#    bar on (every note after it on the new grid, none before it on it).
[1, 2, 4].each do |bars|
  c = VClock.new(T0 + 1.1)
  f = grid_feed(c, T0)
  change_beat = 4.0 * 13 # the bar where 132 bpm starts
  change_at = T0 + change_beat * 0.5
  f.agree(change_at - 1.0, T0, change_at, change_beat, 132.0)
  told = []
  f.on_change = ->(seg, lead) { told << [seg.bpm, seg.beat, lead] }
  sp = FakeLang.new(c, f, T0 + 1.1)
  rnd = Random.new(10 + bars)
  (48 / bars).times do
    sp.lag = rnd.rand * 0.05
    sp.tutti_sync(bars)
    (4 * bars).times do
      sp.play
      sp.sleep 1
    end
  end
  bad = sp.played.count do |t, bpm|
    if t < change_at - 1e-9
      ((t - T0) / 0.5 - ((t - T0) / 0.5).round).abs > 1e-6 || bpm != 120.0
    else
      x = (t - change_at) / (60.0 / 132)
      (x - x.round).abs > 1e-6 || (bpm - 132.0).abs > 1e-9
    end
  end
  after = sp.played.count { |t, _| t >= change_at - 1e-9 }
  gaps = sp.played.each_cons(2).map { |(x, _), (y, _)| (y - x).round(6) }.uniq.sort
  check "#{bars}-bar loop across 120 -> 132 bpm: every note on its tempo's grid", bad == 0 && after > 8,
        "#{bad} wrong, #{after} after the change"
  check "#{bars}-bar loop across the change: no silence", gaps == [(60.0 / 132).round(6), 0.5],
        "gaps #{gaps.inspect}"
  check "#{bars}-bar loop across the change: no sleep of nothing", sp.tiny == 0, "#{sp.tiny} tiny sleeps"
  check "the change is told once, about 1 s ahead (when heard)", told.size == 1 && told[0][0] == 132.0 &&
        told[0][1] == change_beat && told[0][2] > 0.9 && told[0][2] <= 1.0, told.inspect
end

# 4. The same change heard only 0.3 s before its bar (less than
#    sched_ahead_time + GUARD): reported in the status as a late change.
c = VClock.new(T0 + 1.1)
f = grid_feed(c, T0)
f.agree(T0 + 26.0 - 0.3, T0, T0 + 26.0, 52.0, 132.0)
sp = FakeLang.new(c, f, T0 + 1.1)
sp.tutti_sync
60.times { sp.sleep 1 }
check "a change heard too late for the schedule-ahead is counted", f.stats[:late_changes] == 1,
      f.stats.inspect

# 5. A truly late thread (600 ms behind, more than sched_ahead - L): it is
#    moved to the next line it can still play, with a warning, never
#    silently; a thread 200 ms behind is not.
c = VClock.new(T0 + 20.0 - 0.5 + 0.2)
f = grid_feed(c, T0)
sp = FakeLang.new(c, f, T0 + 20.0 - 0.5)
b = sp.tutti_sync
check "200 ms behind: the line at its audio time", b == 40.0 && sp.warnings.empty?, "beat #{b}"
c = VClock.new(T0 + 20.0 - 0.5 + 0.6)
f = grid_feed(c, T0)
sp = FakeLang.new(c, f, T0 + 20.0 - 0.5)
b = sp.tutti_sync
st = sp.instance_variable_get(:@tutti_state)
check "600 ms behind: the next playable line, with a warning", b == 44.0 && sp.warnings.size == 1 &&
      st.skipped == 1, "beat #{b}, #{sp.warnings.inspect}"

# 6. Solo without any grid from a plugin: the thread's own tempo, from 1970.
c = VClock.new(T0 + 0.77)
f = VFeed.new(c, mode: "solo")
sp = FakeLang.new(c, f, T0 + 0.77, bpm: 90.0)
b = nil
err = nil
begin
  b = sp.tutti_sync
rescue StandardError => e
  err = e
end
line = (sp.vt + 0.5) / (60.0 / 90) / 4
check "solo with no grid: tutti_sync lines up to the own tempo, no error", err.nil? &&
      (line - line.round).abs < 1e-6, err ? err.message : "bar #{line.round(6)}"

# 7. use_bpm :tutti follows, a number leaves, with_bpm comes back.
c = VClock.new(T0 + 1.0)
f = grid_feed(c, T0, 100.0)
sp = FakeLang.new(c, f, T0 + 1.0)
sp.use_bpm :tutti
check "use_bpm :tutti takes the session's tempo", (sp.current_bpm - 100.0).abs < 1e-9, sp.current_bpm.to_s
sp.with_bpm(60) { check "with_bpm 60 inside: 60", (sp.current_bpm - 60).abs < 1e-9 }
check "after with_bpm: following again", (sp.current_bpm - 100.0).abs < 1e-9 && sp.__send__(:__tutti_following?)
sp.use_bpm 70
v = sp.vt
sp.sleep 1
check "use_bpm 70 leaves: a beat is 60/70 s", (sp.vt - v - 60.0 / 70).abs < 1e-6 && !sp.__send__(:__tutti_following?), "#{sp.vt - v}"

# 8. The feed's messages: a bundle decodes; a new mode starts a new grid.
args = [3, 3.9e9, T0, 8.0, 126.0, 4.0, 1]
body = T::Link.pad("/tutti/timeline") + T::Link.pad(",idddddi") + [3].pack("l>") +
       args[1..5].pack("G*") + [1].pack("l>")
bundle = "#bundle\0".b + [0, 1].pack("NN") + [body.bytesize].pack("l>") + body
ms = T::Link.messages(bundle)
check "a bundled /tutti/timeline decodes", ms.size == 1 && ms[0][0] == "/tutti/timeline" &&
      ms[0][1][4] == 126.0 && ms[0][1][2] == T0, ms.inspect
c = VClock.new(T0)
f = VFeed.new(c, mode: "session")
f.handle(*ms[0])
e1 = f.grid.epoch
f.handle("/tutti/session", ["solo", 0.0, 0.0, 1, 0, 0, "performer"])
check "leaving starts a new grid (the old one is dropped)", f.grid.nil? && f.info[:mode] == "solo"
f.handle(*ms[0])
check "the new grid has a new epoch", f.grid.epoch > e1

# 8b. A join (or a leave) while a loop waits in tutti_sync: the feed drops
#     the old grid (the new mode), the new grid comes a little later. The
#     loop counts afresh on the new grid and is never left behind its time
#     (Sonic Pi kills a thread more than 1.1 s + sched_ahead_time behind:
#     "Timing Exception: thread got too far behind time").
[[0.3, 0.05], [1.9, 0.05], [0.3, 3.0], [3.5, 0.2]].each do |tj, gap|
  bpm = 132.0
  c = VClock.new(T0 + 7.0)
  f = grid_feed(c, T0, bpm, mode: "solo")
  sp = FakeLang.new(c, f, T0 + 7.0, bpm: bpm)
  f.due << [T0 + 7.0 + tj, "/tutti/session", ["session", 0.15, 0.25, 3, 1, 4, "performer"]]
  f.timeline_at(T0 + 7.0 + tj + gap, 0, T0 + 0.123, 0.0, bpm)
  b = sp.tutti_sync 2
  behind = c.t - sp.sat - sp.vt
  line = (sp.vt + sp.sat - (T0 + 0.123)) * bpm / 60.0 / 8
  check "a join #{tj} s into a 2-bar tutti_sync (its grid #{gap} s later): the loop is not behind",
        behind <= 1e-6, "#{(behind * 1000).round(1)} ms behind, beat #{b}"
end

# 9. The same loops on Sonic Pi 4's terms (written from its source, 4.5):
#    the thread's tempo is bpm (:sonic_pi_spider_bpm) times a density,
#    logical time a Rational, and sleep moves it by beats * 60 / bpm.
class FakeLang4 < FakeLang
  def initialize(clock, feed, vt, bpm: 120.0, sat: 0.5)
    super
    @tl.set(:sonic_pi_spider_time, Rational(vt))
    @tl.set(:sonic_pi_spider_bpm, bpm)
    @tl.set(:sonic_pi_spider_sleep_mul, nil)
  end

  def __get_spider_bpm
    @tl.get(:sonic_pi_spider_bpm) * __get_spider_time_density
  end

  def __get_spider_time_density
    @tl2.get(:sonic_pi_spider_time_density, 1).to_f
  end

  def __get_spider_beat
    @tl.get(:sonic_pi_spider_beat)
  end

  def __change_spider_time_and_beat!(t, b)
    @tl.set(:sonic_pi_spider_time, t.to_r)
    @tl.set(:sonic_pi_spider_beat, b.to_f)
  end

  def current_bpm
    __get_spider_bpm
  end

  def use_bpm(bpm)
    @tl.set(:sonic_pi_spider_bpm, bpm.to_f)
  end

  def sleep(beats)
    return if beats == 0
    nv = @tl.get(:sonic_pi_spider_time) + Rational(beats * 60.0 / __get_spider_bpm)
    @tl.set(:sonic_pi_spider_time, nv)
    @clock.t = [@clock.t, nv.to_f].max + @lag
  end
end

FakeLang4.prepend(T::Tempo) # as attach does to Sonic Pi 4's SonicPiLang

c = VClock.new(T0 + 1.1)
f = grid_feed(c, T0)
change_at = T0 + 52.0 * 0.5
f.agree(change_at - 1.5, T0, change_at, 52.0, 132.0)
sp = FakeLang4.new(c, f, T0 + 1.1)
12.times do
  sp.lag = 0.01
  sp.tutti_sync(2)
  8.times do
    sp.play
    sp.sleep 1
  end
end
bad = sp.played.count do |t, bpm|
  g = t < change_at - 1e-9 ? [T0, 0.5, 120.0] : [change_at, 60.0 / 132, 132.0]
  x = (t - g[0]) / g[1]
  (x - x.round).abs > 1e-6 || (bpm - g[2]).abs > 1e-9
end
check "Sonic Pi 4's terms: 2-bar loop across 120 -> 132 bpm on the grid", bad == 0 &&
      sp.played.size == 96, "#{bad} wrong of #{sp.played.size}"
sp.use_bpm 100
check "Sonic Pi 4's terms: use_bpm 100 leaves the session's tempo",
      !sp.__send__(:__tutti_following?)

# 10. The schedule again with the clock's mapping moved by 0.1 ms: the same
#     timelines (known by their beat) moved, not added, and no new change.
c = VClock.new(T0 + 5)
f = grid_feed(c, T0)
f.agree(c.t, T0, T0 + 26.0, 52.0, 132.0)
f.deliver_due
n0 = f.stats[:changes]
f.agree(c.t, T0 + 0.0001, T0 + 26.0001, 52.0, 132.0)
f.deliver_due
check "a moved mapping replaces the timelines it moves", f.grid.segments.size == 2 &&
      (f.grid.segments[1].at - (T0 + 26.0001)).abs < 1e-6 && f.stats[:changes] == n0,
      f.grid.segments.map { |x| [x.at - T0, x.beat] }.inspect

puts $failures.zero? ? "all passed" : "#{$failures} failed"
exit($failures.zero? ? 0 : 1)
