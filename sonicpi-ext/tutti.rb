# tutti for Sonic Pi: play one performance with other people, each on their
# own machine (docs/sonicpi.md is the user's guide).
#
# Loaded into an unmodified Sonic Pi (3.2 from Debian; 4.x has the same
# structure) from its init file by the hook `tutti sonicpi install` writes:
#
#   Kernel.load "~/.sonic-pi/tutti/tutti.rb"; SonicPi::Lang::Tutti.attach(self)
#
# `attach` adds the tutti_* functions to Sonic Pi's language (with `doc`
# entries, as Sonic Pi's own functions have). Sonic Pi's scsynth has been
# started through the `scsynth` wrapper, so Sonic Pi's send port is the tutti
# plugin's proxy port and the real scsynth listens on another port.
#
# What tutti_join does, in order:
#   1. `/cmd tutti join HUB SESSION NAME [JOURNAL]` to the proxy, then waits
#      until the plugin reports mode "session";
#   2. re-creates Sonic Pi's boot state in this member's part, as session
#      events, with the node, bus and buffer numbers Sonic Pi already uses:
#      the studio groups (mixer, fx, synths, monitor), the main mixer synth
#      (in_bus = the mixer bus), the groups and mixers of runs in progress, the
#      random-stream buffer and every sample loaded so far. From then on
#      Sonic Pi's own /s_new, /n_set, /n_free ... on those numbers land in its
#      part on every member's server: its mixer chain exists everywhere;
#   3. pauses the solo mixer group on the local server (Sonic Pi no longer
#      feeds it; its amp replies would mix into the meters);
#   4. raises sched_ahead_time to at least L + 0.1 s.
# tutti_leave undoes it: the plugin leaves (every server frees the part), the
# solo mixer runs again, and what was made during the session is made again
# on the local server.
#
# Time (design notes). A Sonic Pi thread has a logical time vt; what it plays
# sounds at vt + sched_ahead_time ("audio time"), and Sonic Pi's own sleep
# and sync move vt, never the wall clock. The session's grid maps audio time
# to beats (the timeline: beat b at local wall time `at`, bpm, quantum; bar
# lines are the beats that are multiples of the quantum). The extension
# keeps that map in a Grid: the timeline in force plus every agreed change
# not yet in force, as the plugin's feed reports them (`/cmd tutti notify 1`,
# `/tutti/timeline`, docs/plugin.md "The session feed"); an older plugin
# without the feed is polled for the timeline in force.
#   - tutti_sync waits for the first bar line at or after the thread's audio
#     time (within 0.1 ms), never a later one while the thread is in time.
#     A thread so late that the line's notes could not reach every server
#     before it (now > line - L in a session, now > line alone) is "truly
#     late": it is moved to the next line it can play and Sonic Pi's log
#     says so in red, as Sonic Pi's own timing errors do; never silently.
#   - A thread that follows the session's tempo (`use_bpm :tutti`, or any
#     thread after tutti_sync, as `link` does in Sonic Pi 4) counts its sleeps
#     in session beats: each sleep ends at the audio time of its last beat on
#     the grid, changes included, so every member's loops switch tempo on the
#     agreed beat. The end of a sleep is fixed GUARD seconds before the thread
#     wakes (it waits for the feed until then), so a change must be known
#     sched_ahead_time + GUARD (150 ms) before it takes effect: the hub's change lead.
#   - The moves themselves are Sonic Pi's own sleep with the thread's seconds
#     per beat set for that one sleep: its warnings, its scheduling.
require 'socket'
require 'timeout'

module SonicPi
  module Lang
    module Tutti
      include SonicPi::Lang::Support::DocSystem

      VERSION = "0.1.0" unless const_defined?(:VERSION)

      # Plain OSC over UDP to the plugin's proxy (or to scsynth itself):
      # requests that wait for their answer with a deadline, never forever.
      class Link
        # start: false makes one without its thread or socket (tests feed it
        # with handle()).
        def initialize(port, start: true)
          @port = port
          @sock = UDPSocket.new
          @sock.connect("127.0.0.1", port)
          @mutex = Mutex.new
        end

        attr_reader :port

        def close
          @sock.close rescue nil
        end

        def self.pad(s)
          s + ("\0" * (4 - (s.bytesize % 4)))
        end

        def self.encode(addr, *args)
          tags = ","
          data = "".b
          args.each do |a|
            case a
            when Integer
              tags << "i"; data << [a].pack("l>")
            when Float, Rational
              tags << "f"; data << [a.to_f].pack("g")
            when Symbol, String
              tags << "s"; data << pad(a.to_s.b)
            when true, false
              tags << "i"; data << [a ? 1 : 0].pack("l>")
            else
              if a.respond_to?(:to_f)
                tags << "f"; data << [a.to_f].pack("g")
              else
                tags << "s"; data << pad(a.to_s.b)
              end
            end
          end
          pad(addr.b) + pad(tags.b) + data
        end

        # Every message in a packet (bundles opened), as [addr, args].
        def self.messages(b, out = [])
          return out if b.nil? || b.bytesize < 4
          if b.start_with?("#bundle\0")
            at = 16
            while at + 4 <= b.bytesize
              n = b[at, 4].unpack1("l>")
              break if n <= 0 || at + 4 + n > b.bytesize
              messages(b[at + 4, n], out)
              at += 4 + n
            end
            return out
          end
          m = decode(b)
          out << m if m
          out
        end

        def self.decode(b)
          return nil if b.nil? || b.bytesize < 4 || b.start_with?("#bundle")
          i = b.index("\0") or return nil
          addr = b[0, i]
          at = (i + 4) & ~3
          return [addr, []] if at >= b.bytesize || b[at] != ","
          j = b.index("\0", at) or return nil
          tags = b[(at + 1)...j]
          at = (j + 4) & ~3
          args = []
          tags.each_char do |t|
            case t
            when "i" then args << b[at, 4].unpack1("l>"); at += 4
            when "f" then args << b[at, 4].unpack1("g"); at += 4
            when "d" then args << b[at, 8].unpack1("G"); at += 8
            when "h" then args << b[at, 8].unpack1("q>"); at += 8
            when "s", "S"
              k = b.index("\0", at) || b.bytesize
              args << b[at...k].force_encoding("UTF-8")
              at = (k + 4) & ~3
            when "b"
              n = b[at, 4].unpack1("l>"); at += 4
              args << b[at, n]; at += (n + 3) & ~3
            end
          end
          [addr, args]
        rescue StandardError
          nil
        end

        def send_msg(addr, *args)
          @sock.send(Link.encode(addr, *args), 0)
        end

        # Sends, then waits up to `secs` for a message for which the block
        # returns true; returns [addr, args] or nil.
        def request(secs, addr, *args)
          @mutex.synchronize do
            drain
            send_msg(addr, *args)
            deadline = Time.now + secs
            loop do
              left = deadline - Time.now
              return nil if left <= 0
              r, = IO.select([@sock], nil, nil, left)
              next unless r
              begin
                m = Link.decode(@sock.recv(65536))
              rescue Errno::ECONNREFUSED
                return nil
              end
              return m if m && yield(m[0], m[1])
            end
          end
        end

        def drain
          loop do
            @sock.recv_nonblock(65536)
          end
        rescue IO::WaitReadable, Errno::ECONNREFUSED
          nil
        end
      end

      # The wall clock (seconds since 1970); tests give a virtual one.
      @clock = -> { Time.now.to_f }
      class << self
        attr_accessor :clock
      end
      def self.now
        @clock.call
      end

      NTP_EPOCH = 2_208_988_800 # seconds from 1900 (session time) to 1970

      # The session's grid on this machine's wall clock: the timeline in force
      # and the agreed changes after it, each a segment (seq, at, beat, bpm,
      # quantum, playing; `at` local wall time, seconds since 1970; `heard`
      # when this Sonic Pi learnt of it). Immutable: a new Grid replaces the
      # old one whole, so readers on any thread see one consistent map.
      class Grid
        Segment = Struct.new(:seq, :at, :beat, :bpm, :quantum, :playing, :heard)

        attr_reader :segments, :epoch, :source

        # source: :feed, :status (an older plugin's status) or :local (nothing
        # heard: a grid of the thread's own tempo from 1970)
        def initialize(segments, epoch = 0, source = :feed)
          @segments = segments.sort_by(&:at).freeze
          @epoch = epoch
          @source = source
          freeze
        end

        def self.local(bpm, quantum = 4.0)
          new([Segment.new(-1, 0.0, 0.0, bpm.to_f, quantum.to_f, 1, 0.0)], -1, :local)
        end

        def empty?
          @segments.empty?
        end

        def seg_at_time(t)
          s = @segments.first
          @segments.each { |x| x.at <= t ? s = x : break }
          s
        end

        def seg_at_beat(b)
          s = @segments.first
          @segments.each { |x| x.beat <= b ? s = x : break }
          s
        end

        def beat_at(t)
          s = seg_at_time(t)
          s.beat + (t - s.at) * s.bpm / 60.0
        end

        def time_at(b)
          s = seg_at_beat(b)
          s.at + (b - s.beat) * 60.0 / s.bpm
        end

        def bpm_at(t)
          seg_at_time(t).bpm
        end

        def quantum_at(t)
          seg_at_time(t).quantum
        end

        # The first beat that is a multiple of `span` beats at or after audio
        # time t, with `eps` seconds of tolerance (a loop whose bar just ended
        # is on its line, not a rounding error before it).
        def line_at_or_after(t, span, eps)
          b = beat_at(t) - eps * bpm_at(t) / 60.0
          (b / span).ceil * span
        end

        # Changes agreed and not yet in force at local time t.
        def pending(t)
          @segments.select { |x| x.at > t }
        end
      end

      # The plugin's session feed, from inside Sonic Pi: a thread with its own
      # socket to the proxy port subscribes (`/cmd tutti notify 1`, again every
      # 5 s) and keeps the Grid and the session's mode, L, latency, members,
      # part and role. A plugin without the feed answers the subscription
      # with /fail: then the thread polls `/cmd tutti status` 4 times a second
      # and keeps the timeline in force (changes are then known only when
      # they take effect). Waiters (sleeping threads) are woken when the grid
      # changes.
      class Feed
        RENEW = 5.0
        POLL = 0.25

        attr_reader :grid, :mode, :session, :supported, :stats
        # called (segment, seconds ahead) for every change heard ahead
        attr_accessor :on_change

        # start: false makes one without its thread or socket (tests feed it
        # with handle()).
        def initialize(port, start: true)
          @port = port
          @lock = Mutex.new
          @changed = ConditionVariable.new
          @grid = nil
          @mode = nil
          @session = {}
          @supported = nil # true: feed; false: polling an older plugin
          @epoch = 0
          @segs = {}
          @stats = {changes: 0, least_lead: nil, late_changes: 0, sat_at_change: nil}
          return unless start
          @sock = UDPSocket.new
          @sock.connect("127.0.0.1", port)
          @thread = Thread.new { run }
        end

        attr_reader :port

        def alive?
          !@thread || @thread.alive?
        end

        def close
          @thread.kill rescue nil
          (@sock.send(Link.encode("/cmd", "tutti", "notify", 0), 0) rescue nil)
          @sock.close rescue nil
        end

        # What the feed knows, as a Hash (nil before anything was heard).
        def info
          @lock.synchronize { @mode ? @session.merge(mode: @mode) : nil }
        end

        # Waits (at most `secs`) until the block, given the grid, returns a
        # value <= 0 (seconds left); wakes at once when the grid changes.
        def wait_until(secs_max)
          deadline = Tutti.now + secs_max
          @lock.synchronize do
            Kernel.loop do
              left = yield(@grid)
              break if left.nil? || left <= 0
              rest = deadline - Tutti.now
              break if rest <= 0
              @changed.wait(@lock, [left, rest].min)
            end
          end
          @grid
        end

        # Waits until the feed has seen mode `m` (true) or `secs` passed.
        def wait_mode(m, secs)
          deadline = Tutti.now + secs
          @lock.synchronize do
            until @mode == m && @grid
              rest = deadline - Tutti.now
              return false if rest <= 0
              @changed.wait(@lock, rest)
            end
          end
          true
        end

        # Called with the sched_ahead_time in use when a thread computes past
        # a change: how early changes are known against what Sonic Pi needs.
        def note_sat(sat)
          @stats[:sat_at_change] = sat
        end

        # ---------------------------------------------------------- the thread

        def run
          subscribe
          renew = Tutti.now + RENEW
          Kernel.loop do
            wait = @supported == false ? POLL : [renew - Tutti.now, 0.05].max
            r, = IO.select([@sock], nil, nil, wait)
            if r
              begin
                Link.messages(@sock.recv_nonblock(65536)).each { |a, args| handle(a, args) }
              rescue IO::WaitReadable, Errno::ECONNREFUSED
                nil
              end
            end
            if @supported == false
              poll
            elsif Tutti.now >= renew
              subscribe
              renew = Tutti.now + RENEW
            end
          end
        rescue StandardError => e
          STDOUT.puts "tutti: the session feed stopped: #{e.message}"
        end

        def subscribe
          return unless @sock
          @sock.send(Link.encode("/cmd", "tutti", "notify", 1), 0)
        rescue Errno::ECONNREFUSED
          nil
        end

        def poll
          @sock.send(Link.encode("/cmd", "tutti", "status"), 0)
        rescue Errno::ECONNREFUSED
          nil
        end

        def handle(addr, args)
          case addr
          when "/done"
            @supported = true if args[1] == "tutti notify"
          when "/fail"
            # an older plugin: no feed; poll its status instead
            @supported = false if args[0] == "/cmd" && args[1].to_s.include?("notify") && !@supported
          when "/tutti/timeline"
            @supported = true
            timeline(*args)
          when "/tutti/session"
            @supported = true
            session(*args)
          when "/tutti/members"
            @lock.synchronize { @session[:member_list] = args.each_slice(3).to_a.freeze }
          when "/tutti/status"
            status(args) if @supported == false
          end
        end

        def session(mode = nil, horizon = nil, latency = nil, members = nil, id = nil,
                    part = nil, role = nil, *)
          renew = false
          @lock.synchronize do
            if mode != @mode
              # joined or left: the timelines heard so far are another grid's
              @segs = {}
              @epoch += 1
              @grid = nil
              renew = !@mode.nil?
            end
            @mode = mode
            @session = {horizon: horizon.to_f, latency: latency.to_f, members: members.to_i,
                        id: id.to_i, part: part.to_i, role: role.to_s}
            @changed.broadcast
          end
          subscribe if renew # the current timeline again, for the new grid
        end

        # One timeline of the schedule (the plugin sends the timeline in force
        # and every change agreed after it, each from its beat; again, whole,
        # when a change is agreed or the clock's mapping moves). A timeline
        # is known by the beat it starts at: the same beat again replaces it
        # (a new mapping, or a change agreed anew for that bar).
        def timeline(seq, at_session, at_local, beat, bpm, quantum, playing = 1, *)
          now = Tutti.now
          heard = nil
          @lock.synchronize do
            seg = Grid::Segment.new(seq.to_i, at_local.to_f, beat.to_f, bpm.to_f, quantum.to_f,
                                    playing.to_i, now)
            key = (seg.beat * 1e6).round
            old = @segs[key]
            seg.heard = old.heard if old
            if !old && !@segs.empty? && seg.at > now
              # a change agreed ahead: how long before it takes effect
              lead = seg.at - now
              @stats[:changes] += 1
              @stats[:least_lead] = [@stats[:least_lead] || lead, lead].min
              need = (@stats[:sat_at_change] || 0.5) + GUARD
              @stats[:late_changes] += 1 if lead < need
              heard = [seg, lead]
            end
            @segs[key] = seg
            # keep the timeline in force and those after it
            inforce = @segs.values.select { |x| x.at <= now }.max_by(&:at)
            @segs.delete_if { |_, x| inforce && x.at < inforce.at }
            @grid = Grid.new(@segs.values, @epoch, :feed)
            @changed.broadcast
          end
          (@on_change.call(*heard) rescue nil) if heard && @on_change
        end

        # An older plugin's /tutti/status: the timeline in force only.
        def status(args)
          h = {}
          args.each_slice(2) { |k, v| h[k.to_s.to_sym] = v }
          @lock.synchronize do
            mode = h[:mode].to_s
            if mode != @mode
              @epoch += 1 if @mode
              @mode = mode
            end
            @session = {horizon: h[:horizon_ms].to_f / 1000.0, latency: nil,
                        members: h[:members].to_i, id: h[:id].to_i, part: h[:part].to_i,
                        role: nil}
            if h.key?(:timeline_t0_ns) && h[:bpm].to_f > 0
              at = (h[:timeline_t0_ns].to_i - NTP_EPOCH * 1_000_000_000) / 1e9 -
                   h[:clock_offset_ms].to_f / 1000.0
              seg = Grid::Segment.new(0, at, h[:timeline_beat0].to_f, h[:bpm].to_f,
                                      (h[:quantum] || 4).to_f, 1, Tutti.now)
              g = @grid
              same = g && g.segments.size == 1 && (g.segments[0].at - at).abs < 1e-6 &&
                     g.segments[0].bpm == seg.bpm
              unless same
                @grid = Grid.new([seg], @epoch, :status)
                @changed.broadcast
              end
            end
            # solo: an older plugin reports no grid; the last one goes on
          end
        end
      end

      # How long before a thread wakes the end of its sleep is fixed (it waits
      # for the feed until then); a tempo change must be known this much
      # before sched_ahead_time ahead of it.
      GUARD = 0.15
      # A bar line's notes must leave this long before the line at least
      # (besides L in a session), or they are late somewhere.
      SEND_MARGIN = 0.01
      # Tolerance of "at or after" for bar lines (seconds).
      LINE_EPS = 1e-4

      # Sonic Pi's own sleep, use_bpm and with_bpm, seen first (prepended to
      # the language class): a thread that follows the session's tempo
      # sleeps session beats; `use_bpm :tutti` / `with_bpm :tutti` start
      # following, a number stops it. Everything else goes to Sonic Pi.
      module Tempo
        def sleep(beats)
          if !Thread.current[:__tutti_plain] && beats.is_a?(Numeric) && beats > 0 &&
             __tutti_following?
            __tutti_move_to(nil, beats.to_f) { |b| super(b) }
            nil
          else
            super
          end
        end

        def use_bpm(bpm, *args, &block)
          if bpm == :tutti
            raise ArgumentError, "use_bpm does not work with a block. Perhaps you meant with_bpm" if block
            __system_thread_locals.set(:tutti_follow, true)
            __tutti_tempo_now!
            return :tutti
          end
          __system_thread_locals.set(:tutti_follow, false) if bpm.is_a?(Numeric) || bpm == :link
          super
        end

        def with_bpm(bpm, *args, &block)
          raise ArgumentError, "with_bpm must be called with a do/end block. Perhaps you meant use_bpm" unless block
          was = __tutti_following?
          spb = __tutti_spb
          if bpm == :tutti
            __system_thread_locals.set(:tutti_follow, true)
            __tutti_tempo_now!
            begin
              res = block.call
            ensure
              __system_thread_locals.set(:tutti_follow, was)
              was ? __tutti_tempo_now! : __tutti_set_spb(spb)
            end
            return res
          end
          __system_thread_locals.set(:tutti_follow, false)
          begin
            super
          ensure
            __system_thread_locals.set(:tutti_follow, was)
            __tutti_tempo_now! if was
          end
        end
      end

      # Everything the extension keeps, one per Sonic Pi.
      class State
        attr_accessor :joined, :hub, :session, :name, :snapshot, :made, :sat_before,
                      :status, :status_at, :carries, :feed, :skipped, :worst_lag
        attr_reader :mutex, :feed_mutex
        def initialize
          @mutex = Mutex.new
          @feed_mutex = Mutex.new
          @joined = false
          @made = {groups: {}, mixers: {}, samples: {}}
          @skipped = 0
          @worst_lag = 0.0
        end
      end

      # Adds the functions to Sonic Pi's language (the runtime's class,
      # SonicPiLang in 3.x and 4.x) and looks at the plugin once.
      def self.attach(runtime = nil)
        klass = if runtime && runtime.class.ancestors.include?(SonicPi::Runtime)
                  runtime.class
                elsif Object.const_defined?(:SonicPiLang)
                  Object.const_get(:SonicPiLang)
                end
        raise "tutti: cannot find Sonic Pi's language to extend" unless klass
        klass.send(:include, self) unless klass.include?(self)
        klass.send(:prepend, Tempo) unless klass.ancestors.include?(Tempo)
        STDOUT.puts "tutti: Sonic Pi extension #{VERSION} loaded (tutti_join, tutti_leave, ...)"
        STDOUT.flush
        if runtime && runtime.is_a?(klass)
          runtime.instance_variable_set(:@tutti_state, State.new)
          Thread.new do
            runtime.send(:__tutti_attached)
            (runtime.send(:__tutti_feed) rescue nil)
          end
        end
        true
      end

      # ------------------------------------------------------------ internals

      def __tutti_state
        @tutti_state ||= State.new
      end

      def __tutti_studio
        @mod_sound_studio
      end

      def __tutti_scsynth
        __tutti_studio.instance_variable_get(:@server).instance_variable_get(:@scsynth)
      end

      # Sonic Pi's send port: the proxy's when the wrapper started scsynth.
      def __tutti_proxy_port
        (ENV["TUTTI_SONICPI_PROXY_PORT"] || __tutti_scsynth.instance_variable_get(:@send_port)).to_i
      end

      # The real scsynth's port, from its command line (the wrapper execs it).
      def __tutti_scsynth_port
        pid = __tutti_scsynth.instance_variable_get(:@scsynth_pid)
        args = File.binread("/proc/#{pid}/cmdline").split("\0") rescue []
        i = args.index("-u")
        i ? args[i + 1].to_i : nil
      end

      def __tutti_link
        @tutti_link ||= Link.new(__tutti_proxy_port)
      end

      def __tutti_raw_link
        port = __tutti_scsynth_port
        return nil unless port && port != __tutti_proxy_port
        @tutti_raw_link ||= Link.new(port)
      end

      # The plugin's status as a Hash (nil: no plugin answers).
      def __tutti_raw_status(secs = 1.5)
        m = __tutti_link.request(secs, "/cmd", "tutti", "status") { |a, _| a == "/tutti/status" }
        return nil unless m
        h = {}
        m[1].each_slice(2) { |k, v| h[k.to_s.to_sym] = v }
        st = __tutti_state
        st.status = h
        st.status_at = Time.now
        h
      end

      def __tutti_need_plugin!
        st = __tutti_raw_status
        return st if st
        raise "tutti: no tutti plugin answers on port #{__tutti_proxy_port}. Start Sonic Pi " \
              "with its scsynth going through tutti: run `tutti sonicpi install` once, then " \
              "start Sonic Pi with ~/.sonic-pi/tutti/bin/sonic-pi-tutti (see docs/sonicpi.md)."
      end

      def __tutti_cmd(secs, *args)
        m = __tutti_link.request(secs, "/cmd", "tutti", *args) do |a, r|
          (a == "/done" || a == "/fail") && r[0] == "/cmd"
        end
        raise "tutti: the plugin did not answer `#{args.first}` within #{secs} s" unless m
        raise "tutti: #{m[1][1]}" if m[0] == "/fail"
        m
      end

      # Sonic Pi 4 with its bundled scsynth (macOS, Windows): no wrapper put
      # the proxy on Sonic Pi's scsynth port; `tutti sonicpi install
      # --bundled-scsynth` loads the plugin through audio-settings.toml and its
      # proxy listens on 57121 (TUTTI_PROXY_PORT unset). Sonic Pi's traffic is
      # sent there from now on (SCSynthExternal's @send_port: Sonic Pi has no
      # public way to set it), and the studio its boot made on scsynth
      # directly is made again through the proxy, so the plugin knows it and
      # carries it into the part at a join. Not run here (no Sonic Pi 4 on
      # Debian 12): written against Sonic Pi 4.5's source.
      PROXY_DEFAULT_PORT = 57121

      def __tutti_adopt_proxy
        return if ENV["TUTTI_SONICPI_PROXY_PORT"]
        sc = __tutti_scsynth
        port = sc.instance_variable_get(:@send_port).to_i
        return if port == PROXY_DEFAULT_PORT
        probe = lambda do |pt|
          l = Link.new(pt)
          m = l.request(0.5, "/cmd", "tutti", "status") { |a, _| a == "/tutti/status" }
          l.close
          m
        end
        return if probe.call(port) # the wrapper's route: the proxy is there
        return unless probe.call(PROXY_DEFAULT_PORT)
        sc.instance_variable_set(:@send_port, PROXY_DEFAULT_PORT)
        @tutti_link.close if @tutti_link
        @tutti_link = nil
        studio = __tutti_studio
        link = __tutti_link
        link.send_msg("/notify", 1)
        [studio.synth_group, studio.fx_group, studio.monitor_group, studio.mixer_group].each do |g|
          link.send_msg("/n_free", g.to_i)
        end
        __tutti_make_studio(link)
        STDOUT.puts "tutti: Sonic Pi's scsynth traffic goes through the tutti proxy on " \
                    "#{PROXY_DEFAULT_PORT} (scsynth on #{port})"
      rescue StandardError => e
        STDOUT.puts "tutti: could not send Sonic Pi's traffic through the proxy: #{e.message}"
      end

      def __tutti_attached
        __tutti_adopt_proxy
        # A server that joined from its environment (TUTTI_HUB in scsynth's
        # environment) was in the session before Sonic Pi's boot sequence:
        # that sequence is already in the part, on every server.
        st = __tutti_raw_status(1.0)
        if st && st[:mode] == "session"
          s = __tutti_state
          s.joined = :boot
          s.hub, s.session, s.name = st[:hub], st[:session], st[:name]
        end
      rescue StandardError
        nil
      end

      def __tutti_node_id(n)
        return nil if n.nil?
        return n.to_i if n.respond_to?(:to_i)
        inner = n.instance_variable_get(:@node)
        inner ? inner.to_i : nil
      end

      def __tutti_node_args(n)
        a = n.respond_to?(:args) ? n.args : nil
        a ||= n.instance_variable_get(:@node)&.args
        (a || {}).flat_map { |k, v| [k.to_s, v.to_f] }
      rescue StandardError
        []
      end

      def __tutti_node_name(n, dflt)
        n.respond_to?(:name) ? n.name.to_s : dflt
      rescue StandardError
        dflt
      end

      # What Sonic Pi has made on its server that its later messages rely on.
      def __tutti_inventory
        __tutti_inventory_of_3x
      rescue StandardError
        # a Sonic Pi without 3.x's job tables: only a plugin that carries
        # the part's state can join it (it does; docs/sonicpi.md)
        {groups: {}, mixers: {}, samples: {}}
      end

      def __tutti_inventory_of_3x
        studio = __tutti_studio
        groups = {}
        @job_group_mutex.synchronize { @job_groups.each { |j, g| groups[j] = __tutti_node_id(g) } }
        mixers = {}
        @job_mixers_mutex.synchronize do
          @job_mixers.each do |j, m|
            mixers[j] = [__tutti_node_id(m), __tutti_node_name(m, "sonic-pi-basic_mixer"),
                         __tutti_node_args(m)]
          end
        end
        samples = {}
        (studio.instance_variable_get(:@samples) || {}).each do |path, info|
          id = info.respond_to?(:to_i) ? info.to_i : nil
          samples[path] = id if id
        end
        {groups: groups, mixers: mixers, samples: samples}
      end

      # The studio's groups and main mixer, in the current namespace (the
      # part's when in a session). Same ids as Sonic Pi's.
      def __tutti_make_studio(link)
        studio = __tutti_studio
        mg = studio.mixer_group.to_i
        link.send_msg("/g_new", mg, 0, 0)
        link.send_msg("/g_new", studio.fx_group.to_i, 2, mg)
        link.send_msg("/g_new", studio.synth_group.to_i, 2, studio.fx_group.to_i)
        link.send_msg("/g_new", studio.monitor_group.to_i, 3, mg)
        mixer = studio.mixer
        args = __tutti_node_args(mixer)
        args = ["in_bus", studio.mixer_bus.to_i.to_f] if args.empty?
        link.send_msg("/s_new", __tutti_node_name(mixer, "sonic-pi-mixer"), mixer.to_i, 0, mg, *args)
      end

      def __tutti_make(link, inv, skip = nil)
        studio = __tutti_studio
        sg = studio.synth_group.to_i
        mg = studio.mixer_group.to_i
        made = {groups: {}, mixers: {}, samples: {}}
        inv[:groups].each do |j, g|
          next if g.nil? || (skip && skip[:groups].key?(j))
          link.send_msg("/g_new", g, 1, sg)
          made[:groups][j] = g
        end
        inv[:mixers].each do |j, (id, name, args)|
          next if id.nil? || (skip && skip[:mixers].key?(j))
          link.send_msg("/s_new", name, id, 0, mg, *args)
          made[:mixers][j] = id
        end
        rand = studio.rand_buf_id rescue nil
        if rand && !skip
          link.send_msg("/b_allocRead", rand.to_i, buffers_path + "/rand-stream.wav", 0, 0)
        end
        inv[:samples].each do |path, id|
          next if skip && skip[:samples].key?(path)
          link.send_msg("/b_allocRead", id, path, 0, 0)
          made[:samples][path] = id
        end
        made
      end

      # Waits until everything sent through `link` before has been played.
      def __tutti_sync(link, secs)
        id = 0x7475 + Kernel.rand(100000)
        !!link.request(secs, "/sync", id) { |a, r| a == "/synced" && r[0] == id }
      end

      def __tutti_apply_latency(horizon_ms)
        return unless horizon_ms
        # L for the notes to reach everyone, plus a margin. (A with_fx waits
        # for its groups' /n_go; the plugin answers it as soon as the
        # session has the group, not L later when it is made.)
        need = horizon_ms.to_f / 1000.0 + 0.1
        cur = current_sched_ahead_time.to_f
        st = __tutti_state
        st.sat_before ||= cur
        if cur < need
          set_sched_ahead_time!(need.round(3))
        end
      end

      # The session's time (seconds since 1970 on the session clock) now.
      def __tutti_session_now(status)
        Time.now.to_f + status[:clock_offset_ms].to_f / 1000.0
      end

      # ------------------------------------------------------------ time

      def __tutti_feed
        st = __tutti_state
        f = st.feed
        return f if f && f.alive? && f.port == __tutti_proxy_port
        st.feed_mutex.synchronize do
          f = st.feed
          unless f && f.alive? && f.port == __tutti_proxy_port
            f.close if f
            f = st.feed = Feed.new(__tutti_proxy_port)
            f.on_change = lambda do |seg, lead|
              __info "tutti: the session plays #{seg.bpm.round(2)} bpm from beat #{seg.beat.round(2)} " \
                     "(in #{lead.round(2)} s)"
            end
          end
        end
        f
      end

      # Sonic Pi 4 keeps the thread's tempo as bpm (:sonic_pi_spider_bpm),
      # 3.2 as seconds per beat (:sonic_pi_spider_sleep_mul).
      def __tutti_v4?
        respond_to?(:__get_spider_bpm, true)
      end

      def __tutti_density
        if __tutti_v4?
          __get_spider_time_density.to_f
        else
          (__thread_locals.get(:sonic_pi_local_spider_density) || 1.0).to_f
        end
      end

      # Seconds per beat of this thread's sleeps (density included).
      def __tutti_spb
        if __tutti_v4?
          60.0 / __get_spider_bpm.to_f
        else
          __system_thread_locals.get(:sonic_pi_spider_sleep_mul, 1.0).to_f
        end
      end

      def __tutti_set_spb(spb)
        if __tutti_v4?
          __system_thread_locals.set(:sonic_pi_spider_bpm, 60.0 / (spb * __tutti_density))
        else
          __system_thread_locals.set(:sonic_pi_spider_sleep_mul, spb)
        end
      end

      def __tutti_vt
        __system_thread_locals.get(:sonic_pi_spider_time).to_f
      end

      # This thread carries on from now (after waiting for a join or leave).
      def __tutti_vt_now!
        if respond_to?(:__change_spider_time_and_beat!, true)
          __change_spider_time_and_beat!(Time.now.to_r, __get_spider_beat)
        else
          __system_thread_locals.set(:sonic_pi_spider_time, Time.now.freeze)
        end
        __system_thread_locals.set_local(:tutti_beat, nil)
      end

      def __tutti_following?
        !!__system_thread_locals.get(:tutti_follow)
      end

      # The grid to count on: the feed's, else a grid of this thread's own
      # tempo (4 beats a bar, from 1970) so that alone, without any plugin,
      # tutti_sync still lines loops up on this machine.
      def __tutti_grid
        f = (__tutti_feed rescue nil)
        g = f && f.grid
        g || Grid.local(current_bpm.is_a?(Numeric) ? current_bpm : 60.0)
      end

      def __tutti_in_session?
        f = (__tutti_feed rescue nil)
        i = f && f.info
        !!(i && i[:mode] == "session")
      end

      # The thread's tempo for what it plays next (synth arguments scale with
      # it): the session's at its audio time.
      def __tutti_tempo_now!
        g = __tutti_grid
        t = __tutti_vt + current_sched_ahead_time.to_f
        __tutti_set_spb(60.0 / g.bpm_at(t) / __tutti_density)
      end

      # The session beat this thread is at (its audio time on the grid); exact
      # when its last move was ours on the same grid.
      def __tutti_beat(g, vt, sat)
        c = __system_thread_locals.get(:tutti_beat)
        return c[1] if c && c[2] == g.epoch && (c[0] - vt).abs < 1e-5
        g.beat_at(vt + sat)
      end

      # Moves this thread on through Sonic Pi's own sleep (the block), so its
      # warnings and scheduling apply: to the next line of `span` beats
      # (tutti_sync), or `beats` session beats on (a sleep that follows the
      # tempo). The end is fixed GUARD seconds before the thread wakes: until
      # then a change heard from the feed still moves it. A join or leave
      # meanwhile (a new grid) counts afresh on the new grid. Returns the
      # session beat reached and how many lines a truly late thread skipped.
      def __tutti_move_to(span, beats)
        f = (__tutti_feed rescue nil)
        sat = current_sched_ahead_time.to_f
        vt = __tutti_vt
        d = __tutti_density
        g = __tutti_grid
        b1 = skipped = nil
        3.times do
          b0 = __tutti_beat(g, vt, sat)
          if span
            b1 = g.line_at_or_after(vt + sat, span, LINE_EPS)
            # truly late: the line's notes could not reach every server in
            # time any more; the next line that can be played, said aloud
            need = SEND_MARGIN + (__tutti_in_session? ? (f.info[:horizon] rescue 0.0).to_f : 0.0)
            skipped = 0
            while Tutti.now > g.time_at(b1) - need
              b1 += span
              skipped += 1
            end
          else
            b1 = b0 + beats / d
          end
          break unless f && f.grid && f.grid.epoch == g.epoch
          ep = g.epoch
          g2 = f.wait_until(86_400.0) do |gg|
            gg && gg.epoch == ep ? gg.time_at(b1) - sat - GUARD - Tutti.now : nil
          end
          f.note_sat(sat)
          if g2 && g2.epoch == ep
            g = g2
            break
          end
          g = __tutti_grid
        end
        b0 = __tutti_beat(g, vt, sat)
        t1 = g.time_at(b1)
        dt = t1 - sat - vt
        n = span ? (b1 - b0) * d : beats
        # A thread already on its line (its last bar just ended) does not
        # sleep at all: a sleep of nothing would find it behind its time
        # (it woke a little after it) and Sonic Pi would warn.
        if dt.abs > LINE_EPS
          n = dt / (60.0 / g.bpm_at(t1)) if n.abs < 1e-9
          __tutti_set_spb(dt / n)
          yield n
        else
          dt = 0.0
        end
        __tutti_set_spb(60.0 / g.bpm_at(t1) / d)
        __system_thread_locals.set_local(:tutti_beat, [vt + dt, b1, g.epoch].freeze)
        [b1, skipped || 0, t1]
      end

      # ------------------------------------------------------------ language

      def tutti_join(session = "tutti", *args)
        opts = args.last.is_a?(Hash) ? args.last : {}
        hub = (opts[:hub] || ENV["TUTTI_HUB"] || "127.0.0.1:7770").to_s
        hub = "tcp://#{hub}" unless hub.include?("://")
        name = (opts[:as] || opts[:name] || ENV["USER"] || "sonicpi").to_s
        journal = opts[:journal] && opts[:journal].to_s
        role = opts[:role] && opts[:role].to_s
        if role && !%w[performer listener conductor admin].include?(role)
          raise "tutti_join: role: is \"performer\", \"listener\", \"conductor\" or \"admin\", not #{role.inspect}"
        end
        # A hub that admits members by invitation or passphrase
        # (docs/security.md): the invitation's text or its file, the
        # passphrase or a file holding it, the hub's key to pin
        cred = []
        invite = opts[:invite] || ENV["TUTTI_INVITE"]
        if invite && !invite.to_s.strip.empty?
          invite = invite.to_s.strip
          # the text itself, or a file the server reads (it runs as you)
          invite = File.expand_path(invite) unless invite.start_with?("tutti-invite-")
          cred += ["invite", invite]
        end
        pass = opts[:passphrase]
        if opts[:passphrase_file]
          begin
            pass = File.read(File.expand_path(opts[:passphrase_file].to_s)).lines.first.to_s.chomp
          rescue SystemCallError => e
            raise "tutti_join: cannot read the passphrase from #{opts[:passphrase_file].to_s.inspect}: #{e.message}"
          end
        end
        cred += ["passphrase", pass.to_s] if pass && !pass.to_s.empty?
        hub_key = opts[:hub_key] || ENV["TUTTI_HUB_KEY"]
        if hub_key && !hub_key.to_s.empty?
          unless hub_key.to_s =~ /\A[0-9a-fA-F]{64}\z/
            raise "tutti_join: hub_key: is the hub's key, 64 hex digits (`tutti hub` prints it)"
          end
          cred += ["hub_key", hub_key.to_s]
        end
        timeout = (opts[:timeout] || 15).to_f
        st = __tutti_state
        status = __tutti_need_plugin!
        st.mutex.synchronize do
          if status[:mode] == "session"
            if st.joined == :boot || st.joined
              __tutti_apply_latency(status[:horizon_ms])
              __info "tutti: already in session #{status[:session].inspect} as #{status[:name]}"
              return status[:part]
            end
            raise "tutti: this server is in session #{status[:session].inspect} already, " \
                  "joined by someone else; tutti_leave first"
          end
          inv = __tutti_inventory
          cmd = ["join", hub, session.to_s, name]
          cmd << (journal || "") if journal || role || !cred.empty?
          cmd << (role || "") if role || !cred.empty?
          cmd += cred
          __tutti_cmd(5, *cmd)
          deadline = Time.now + timeout
          Kernel.loop do
            status = __tutti_raw_status
            break if status && status[:mode] == "session" && status[:part].to_i > 0 &&
                     status[:clock_locked].to_i == 1
            if Time.now > deadline
              (__tutti_cmd(3, "leave") rescue nil)
              raise "tutti: could not join #{session.inspect} through #{hub} within " \
                    "#{timeout.round} s (is `tutti hub` running there? scsynth's log says why)"
            end
            Kernel.sleep 0.1
          end
          # A plugin that carries what was made solo into the part (status
          # key "carried") makes Sonic Pi's studio, runs and samples the
          # part's on every server itself; wait until it has.
          st.carries = status.key?(:carried)
          if st.carries
            Kernel.loop do
              status = __tutti_raw_status
              break if status && status[:carried].to_i == 1
              break if Time.now > deadline + 5
              Kernel.sleep 0.05
            end
          else
            # Sonic Pi's groups, mixers and buffers, in the part, everywhere
            __tutti_make_studio(__tutti_link)
            st.made = __tutti_make(__tutti_link, inv)
          end
          st.snapshot = inv
          unless __tutti_sync(__tutti_link, 10 + status[:horizon_ms].to_f / 1000.0)
            __info "tutti: warning: the part's set-up was not confirmed within 10 s"
          end
          raw = st.carries ? nil : __tutti_raw_link
          raw.send_msg("/n_run", __tutti_studio.mixer_group.to_i, 0) if raw
          st.joined = true
          st.hub, st.session, st.name = hub, session.to_s, name
          st.skipped = 0
          st.worst_lag = 0.0
          __tutti_apply_latency(status[:horizon_ms])
          # the session's grid before anything counts on it (an older plugin
          # without the feed is polled: its grid comes within a poll)
          f = __tutti_feed
          f.wait_mode("session", 2.0)
          # this thread waited: carry on from now, not from before the join
          __tutti_vt_now!
          jpath = status[:journal].to_s
          jnote = if jpath.empty? then ""
                  elsif journal && jpath != journal then "; journal #{jpath} (beside the earlier #{journal})"
                  else "; journal #{jpath}"
                  end
          __info "tutti: joined #{session.to_s.inspect} as #{name} (part #{status[:part]}, " \
                 "#{status[:members]} members, L #{status[:horizon_ms].round(1)} ms#{jnote})"
          status[:part]
        end
      end
      doc name:          :tutti_join,
          introduced:    Version.new(3,2,2),
          summary:       "Join a tutti session",
          doc:           "Joins this Sonic Pi to a tutti session: from now on what you play sounds on the server of every member of the session, and what they play sounds on yours, all at the same shared time. Your part keeps its own synths, samples, groups and FX: another member's `stop` or mixer settings do not touch yours.

Sonic Pi must have been started with its scsynth going through tutti (`tutti sonicpi install`, then `sonic-pi-tutti`; see the tutti guide for Sonic Pi). A `tutti hub` must be running where `hub:` says.

The session's latency L (how far ahead every event is scheduled so that it reaches every member in time) is applied to the schedule-ahead time: if `current_sched_ahead_time` is smaller than L plus 0.1 s it is raised to that.

Returns your part's number (1-31). Joining when already joined does nothing.",
          args:          [[:session, :string]],
          opts:          {hub: "Where the hub is: \"host:port\" (or a tutti URL such as \"tcp://host:port\"). Default: the environment variable TUTTI_HUB, else 127.0.0.1:7770",
                          as: "Your name in the session (each member needs a different one). Default: your user name",
                          journal: "A file where your server writes every event it executes (for `tutti verify`)",
                          timeout: "Seconds to wait for the session to accept you (default 15)"},
          accepts_block: false,
          examples:      ["tutti_join \"friday\", hub: \"studio.example.org:7770\", as: \"alice\"

live_loop :drums do
  sample :bd_haus
  sleep 1
end"]

      def tutti_leave
        st = __tutti_state
        status = __tutti_need_plugin!
        st.mutex.synchronize do
          unless status[:mode] == "session"
            __info "tutti: not in a session: nothing to leave (you are playing alone)"
            return false
          end
          inv = __tutti_inventory
          __tutti_cmd(5, "leave")
          deadline = Time.now + 10
          Kernel.loop do
            s = __tutti_raw_status
            break if s && s[:mode] != "session"
            break if Time.now > deadline
            Kernel.sleep 0.1
          end
          link = __tutti_link
          if status.key?(:carried)
            # the plugin made the part's state this server's own again
          elsif st.joined == :boot
            # the boot sequence went to the part only: make it locally now
            __tutti_make_studio(link)
            __tutti_make(link, inv)
          else
            link.send_msg("/n_run", __tutti_studio.mixer_group.to_i, 1)
            __tutti_make(link, inv, st.snapshot || {groups: {}, mixers: {}, samples: {}})
          end
          __tutti_sync(link, 5)
          st.joined = false
          if st.sat_before && st.sat_before < current_sched_ahead_time.to_f
            set_sched_ahead_time!(st.sat_before)
          end
          st.sat_before = nil
          (__tutti_feed.wait_mode("solo", 2.0) rescue nil)
          __tutti_vt_now!
          __info "tutti: left #{status[:session].to_s.inspect}; playing alone (your loops go on " \
                 "on your own server#{status[:journal].to_s.empty? ? "" : "; the journal #{status[:journal]} is complete"})"
          true
        end
      end
      doc name:          :tutti_leave,
          introduced:    Version.new(3,2,2),
          summary:       "Leave the tutti session",
          doc:           "Leaves the session: your part stops on every member's server (every server frees your part's synths at the same point of the performance) and Sonic Pi plays on your own server alone again, with everything it had loaded. Returns true if you were in a session.",
          args:          [],
          opts:          nil,
          accepts_block: false,
          examples:      ["tutti_leave"]

      def tutti_status
        s = __tutti_raw_status
        f = (__tutti_feed rescue nil)
        st = __tutti_state
        sat = current_sched_ahead_time.to_f
        r = {mode: s ? s[:mode] : "solo", plugin: !s.nil?}
        g = __tutti_grid
        now = Tutti.now
        # at this thread's audio time: what it plays next is at that tempo
        t = (__tutti_vt rescue now) + sat
        r.merge!(bpm: g.bpm_at(t), quantum: g.quantum_at(t), beat: g.beat_at(t).round(3),
                 grid: g.source == :local ? "your own tempo (no tutti plugin has reported a grid)" : (s && s[:mode] == "session" ? "the session's" : "your server's own"))
        pend = g.pending(now).map { |x| {bpm: x.bpm, beat: x.beat, in_s: (x.at - now).round(3)} }
        r[:changes_ahead] = pend
        if s && s[:mode] == "session"
          __tutti_apply_latency(s[:horizon_ms])
          sat = current_sched_ahead_time.to_f
          r.merge!(session: s[:session], name: s[:name], hub: s[:hub], part: s[:part],
                   members: s[:members], horizon_ms: s[:horizon_ms],
                   latency_ms: (s[:rtt_ms].to_f / 2.0).round(3),
                   rtt_ms: s[:rtt_ms], clock_offset_ms: s[:clock_offset_ms],
                   clock_bound_ms: s[:clock_bound_ms], clock_locked: s[:clock_locked] == 1,
                   submitted: s[:submitted], delivered: s[:delivered], late: s[:late],
                   late_injected: s[:late_injected], moved: s[:moved],
                   invalid_events: s[:invalid_events], journal: s[:journal],
                   server_check: s[:server_check])
          r[:role] = f.info[:role] if f && f.info && !f.info[:role].to_s.empty?
        end
        r[:sched_ahead_time] = sat
        r[:sched_ahead_time_before] = st.sat_before if st.sat_before
        r[:skipped_bars] = st.skipped
        r[:worst_lag_ms] = (st.worst_lag * 1000).round(1)
        r[:feed] = f ? (f.supported ? "tempo changes heard ahead" : (f.supported == false ? "polled (an older plugin: changes heard when they start)" : "waiting")) : "none"
        if f && f.stats[:least_lead]
          r[:change_lead_ms] = (f.stats[:least_lead] * 1000).round(1)
          r[:late_changes] = f.stats[:late_changes]
        end
        problems = []
        if s && s[:mode] == "session"
          problems << "the clock is not locked to the session's yet" unless r[:clock_locked]
          if r[:late].to_i > 0 || r[:late_injected].to_i > 0
            problems << "#{r[:late].to_i + r[:late_injected].to_i} notes came late here (L too small: ask for a larger --horizon)"
          end
          problems << "#{r[:moved]} of your notes left too late and were moved" if r[:moved].to_i > 0
          problems << "the servers did different things (server check)" if r[:server_check] == "DIFFERENT"
        end
        problems << "#{st.skipped} bar lines skipped by loops running too late (Sonic Pi too busy?)" if st.skipped > 0
        if r[:late_changes].to_i > 0
          problems << "#{r[:late_changes]} tempo changes came only #{r[:change_lead_ms]} ms before they started; " \
                      "Sonic Pi needs #{((sat + GUARD) * 1000).round} ms (a hub with a larger --change-lead, or a smaller schedule-ahead)"
        end
        r[:health] = problems.empty? ? "good" : problems.join("; ")
        lines = []
        if s && s[:mode] == "session"
          lines << "tutti: in session #{s[:session].inspect} as #{s[:name]} (part #{s[:part]}, #{s[:members]} members#{r[:role] ? ", #{r[:role]}" : ""})"
          lines << "  L #{s[:horizon_ms].to_f.round} ms: every note is sent that far ahead so it reaches everyone in time"
          lines << "  schedule-ahead #{(sat * 1000).round} ms" +
                   (st.sat_before && st.sat_before < sat ? " (raised by tutti_join from #{(st.sat_before * 1000).round} ms to cover L)" : " (covers L)")
        else
          lines << "tutti: playing alone#{s ? "" : " (no tutti plugin answers: see docs/sonicpi.md)"}"
          lines << "  schedule-ahead #{(sat * 1000).round} ms"
        end
        lines << "  tempo #{r[:bpm].round(2)} bpm, #{r[:quantum].to_i} beats a bar (#{r[:grid]} grid)" +
                 pend.map { |x| "; then #{x[:bpm].round(2)} bpm from beat #{x[:beat].round(2)} (in #{x[:in_s].round(1)} s)" }.join
        lines << "  lateness: loops ran at most #{r[:worst_lag_ms]} ms behind their time, #{st.skipped} bar lines skipped" +
                 (s && s[:mode] == "session" ? "; #{r[:late].to_i + r[:late_injected].to_i} notes late here" : "")
        lines << "  health: #{r[:health]}"
        __info lines.join("\n")
        r
      end
      doc name:          :tutti_status,
          introduced:    Version.new(3,2,2),
          summary:       "How the tutti session is doing",
          doc:           "Prints a short report in the log (where you are, L, the schedule-ahead time, the tempo and any change ahead, how late your loops run, and whether all is well) and returns it as a map: `mode` (`\"solo\"` or `\"session\"`), `bpm`, `quantum` (beats a bar) and `beat` of the grid you play on (the session's, or alone your server's own), `changes_ahead` (agreed tempo changes not yet started), `session`, `name`, `part`, `members`, `role`, `horizon_ms` (L: how far ahead every note is sent), `sched_ahead_time` (and `sched_ahead_time_before` if tutti_join raised it), `latency_ms`, `clock_offset_ms`, `clock_bound_ms`, `delivered`, `late` (notes that came after their time here: should stay 0), `skipped_bars` (bar lines a loop missed because it ran too late), `worst_lag_ms`, `journal` and `health` (`\"good\"` or what is wrong, in words).",
          args:          [],
          opts:          nil,
          accepts_block: false,
          examples:      ["tutti_status", "use_bpm tutti_status[:bpm]"]

      def tutti_members
        s = __tutti_need_plugin!
        unless s[:mode] == "session"
          __info "tutti: playing alone: no members (tutti_join first)"
          return []
        end
        m = __tutti_link.request(1.0, "/cmd", "tutti", "members") do |a, r|
          a == "/tutti/members" || (a == "/fail" && r[0] == "/cmd")
        end
        if m && m[0] == "/tutti/members"
          # (id, name, part) triples
          return m[1].each_slice(3).map { |id, n, part| {id: id, name: n, part: part} }
        end
        # the plugin tells how many, not who
        Array.new(s[:members].to_i) { |i| {id: nil, name: (i.zero? ? s[:name] : nil), part: nil} }.tap do |a|
          a[0][:part] = s[:part] unless a.empty?
        end
      end
      doc name:          :tutti_members,
          introduced:    Version.new(3,2,2),
          summary:       "Who is in the session",
          doc:           "Returns a list with one map per member of the session (`id`, `name`, `part`); alone, an empty list. With a plugin that does not report the members' names, only the number of entries is meaningful.",
          args:          [],
          opts:          nil,
          accepts_block: false,
          examples:      ["puts tutti_members.length"]

      def tutti_bpm(bpm)
        bpm = bpm.to_f
        raise "tutti_bpm: the tempo must be between 20 and 999 bpm" unless bpm >= 20 && bpm <= 999
        s = __tutti_need_plugin!
        f = __tutti_feed
        alone = s[:mode] != "session"
        role = f.info && f.info[:role].to_s
        if !alone && %w[performer listener].include?(role)
          raise "tutti_bpm: you joined as #{role}: only a conductor or an admin may change the " \
                "session's tempo (on an open hub, tutti_join ..., role: \"conductor\"; otherwise " \
                "an invitation with that role)"
        end
        heard = f.stats[:changes]
        epoch = f.grid ? f.grid.epoch : -1
        m = __tutti_link.request(2.0, "/cmd", "tutti", "bpm", bpm) do |a, r|
          (a == "/done" || a == "/fail") && r[0] == "/cmd"
        end
        raise "tutti_bpm: the tutti plugin did not answer (is Sonic Pi's scsynth running?)" if m.nil?
        if m[0] == "/fail"
          raise "tutti_bpm: you are playing alone: `use_bpm #{bpm.round(2)}` sets your own tempo; " \
                "tutti_join first to change the session's (the plugin says: #{m[1][1]})" if alone
          raise "tutti_bpm: #{m[1][1]}"
        end
        # The answer comes as a new timeline; this thread does not wait for it.
        Thread.new do
          deadline = Tutti.now + 3.0
          got = nil
          while Tutti.now < deadline && !got
            g = f.grid
            if g && g.epoch == epoch && f.supported && f.stats[:changes] > heard
              got = g.segments.max_by(&:at)
            end
            Kernel.sleep 0.05 unless got
          end
          if got
            nil # the feed's thread says it, on every member
          elsif f.supported
            __info "tutti: the tempo change to #{bpm.round(2)} bpm was sent, but the session has not " \
                   "agreed to it within 3 s (refused? scsynth's log says why)", 1
          end
        end
        bpm
      end
      doc name:          :tutti_bpm,
          introduced:    Version.new(3,2,2),
          summary:       "Propose a new session tempo",
          doc:           "Asks the session to change its tempo to `bpm`. The hub picks the bar line where it starts, far enough ahead that every member hears of it before it schedules that bar (L + the hub's change lead); every member switches on that same beat. Loops that follow the session's tempo (`use_bpm :tutti`, or any loop after `tutti_sync`) play the new tempo from that beat; a loop with `use_bpm` and a number keeps its own. The log says when the session agreed and from which beat. Only a conductor or an admin may change the tempo (`tutti_join ..., role: \"conductor\"` on an open hub). Alone, it changes your own server's grid if the plugin allows it, else it says to use `use_bpm`.",
          args:          [[:bpm, :number]],
          opts:          nil,
          accepts_block: false,
          examples:      ["tutti_bpm 128"]

      def tutti_sync(*args)
        opts = args.last.is_a?(Hash) ? args.pop : {}
        bars = (args.first || opts[:bars] || 1).to_f
        raise "tutti_sync: the number of bars must be more than 0, not #{bars}" unless bars > 0
        st = __tutti_state
        f = (__tutti_feed rescue nil)
        if f && f.info && f.info[:mode] == "session" && f.info[:horizon].to_f > 0
          __tutti_apply_latency(f.info[:horizon].to_f * 1000.0)
        end
        sat = current_sched_ahead_time.to_f
        g = __tutti_grid
        quantum = (opts[:beats_per_bar] || g.quantum_at(__tutti_vt + sat)).to_f
        lag = Tutti.now - __tutti_vt
        st.worst_lag = lag if lag > st.worst_lag
        beat, skipped, = __tutti_move_to(bars * quantum, nil) do |n|
          # Sonic Pi's own sleep, not the tempo-following one
          Thread.current[:__tutti_plain] = true
          begin
            sleep(n)
          ensure
            Thread.current[:__tutti_plain] = nil
          end
        end
        __system_thread_locals.set(:tutti_follow, true)
        if skipped > 0
          st.skipped += skipped
          msg = "tutti_sync: this loop ran #{(lag * 1000).round} ms behind its time, too late for the " \
                "next bar line (its notes would reach #{__tutti_in_session? ? "the others" : "your server"} " \
                "late): it skipped #{skipped} bar line#{skipped == 1 ? "" : "s"} and starts at beat #{beat.round(2)}"
          __delayed_serious_warning(msg) rescue nil
          __info msg, 1
        end
        beat
      end
      doc name:          :tutti_sync,
          introduced:    Version.new(3,2,2),
          summary:       "Wait for the next bar of the session",
          doc:           "Waits for the next bar line of the session (`tutti_sync 4`: the next 4-bar line) after where this thread is in time, so that what you play next starts on a bar that every member agrees on. Like Sonic Pi's `sync` it works in the thread's own (logical) time: a loop whose bar just ended gets the bar line that follows at once, never a later one. Call it before starting live loops (they inherit the time) or at the top of a live loop, on every member.

From then on the thread follows the session's tempo (as `use_bpm :tutti`): its sleeps count the session's beats, and when the session's tempo changes, it plays the new tempo from the agreed beat. `use_bpm` with a number leaves that.

Alone (not in a session) it lines up to your own server's grid, so the same code keeps playing after `tutti_leave`. A loop so late that the next bar line's notes could not reach everyone in time (more than the schedule-ahead time minus L behind) is moved to the following bar line and the log says so in red, like Sonic Pi's own timing errors. Returns the session beat it waited for.",
          args:          [[:bars, :number]],
          opts:          {beats_per_bar: "Beats in a bar (default: the session's quantum, usually 4)"},
          accepts_block: false,
          examples:      ["tutti_sync
live_loop :drums do
  sample :bd_haus
  sleep 1
end", "live_loop :chords do
  tutti_sync 4   # wait for the session's next 4-bar line
  play_chord chord(:e3, :minor)
  sleep 15
end", "use_bpm :tutti   # follow the session's tempo without waiting for a bar"]
    end
  end
end
