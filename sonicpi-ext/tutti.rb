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
        def initialize(port)
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

      # Everything the extension keeps, one per Sonic Pi.
      class State
        attr_accessor :joined, :hub, :session, :name, :snapshot, :made, :sat_before,
                      :status, :status_at, :carries
        attr_reader :mutex
        def initialize
          @mutex = Mutex.new
          @joined = false
          @made = {groups: {}, mixers: {}, samples: {}}
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
        STDOUT.puts "tutti: Sonic Pi extension #{VERSION} loaded (tutti_join, tutti_leave, ...)"
        STDOUT.flush
        if runtime && runtime.is_a?(klass)
          runtime.instance_variable_set(:@tutti_state, State.new)
          Thread.new { runtime.send(:__tutti_attached) }
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

      def __tutti_attached
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

      # ------------------------------------------------------------ language

      def tutti_join(session = "tutti", *args)
        opts = args.last.is_a?(Hash) ? args.last : {}
        hub = (opts[:hub] || ENV["TUTTI_HUB"] || "127.0.0.1:7770").to_s
        hub = "tcp://#{hub}" unless hub.include?("://")
        name = (opts[:as] || opts[:name] || ENV["USER"] || "sonicpi").to_s
        journal = opts[:journal] && opts[:journal].to_s
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
          cmd << journal if journal
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
          __tutti_apply_latency(status[:horizon_ms])
          # this thread waited: carry on from now, not from before the join
          __system_thread_locals.set(:sonic_pi_spider_time, Time.now.freeze)
          __info "tutti: joined #{session.to_s.inspect} as #{name} (part #{status[:part]}, " \
                 "#{status[:members]} members, L #{status[:horizon_ms].round(1)} ms)"
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
          return false unless status[:mode] == "session"
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
          __system_thread_locals.set(:sonic_pi_spider_time, Time.now.freeze)
          __info "tutti: left #{status[:session].to_s.inspect}; playing alone"
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
        s = __tutti_need_plugin!
        r = {mode: s[:mode]}
        if s[:mode] == "session"
          __tutti_apply_latency(s[:horizon_ms])
          r.merge!(session: s[:session], name: s[:name], hub: s[:hub], part: s[:part],
                   members: s[:members], horizon_ms: s[:horizon_ms],
                   latency_ms: (s[:rtt_ms].to_f / 2.0).round(3),
                   rtt_ms: s[:rtt_ms], clock_offset_ms: s[:clock_offset_ms],
                   clock_bound_ms: s[:clock_bound_ms], clock_locked: s[:clock_locked] == 1,
                   submitted: s[:submitted], delivered: s[:delivered], late: s[:late],
                   invalid_events: s[:invalid_events])
          [:bpm, :quantum, :bar, :bar_phase].each { |k| r[k] = s[k] if s.key?(k) }
        end
        r[:sched_ahead_time] = current_sched_ahead_time
        r
      end
      doc name:          :tutti_status,
          introduced:    Version.new(3,2,2),
          summary:       "How the tutti session is doing",
          doc:           "Returns a map describing the session as your server sees it: `mode` (`\"solo\"` or `\"session\"`), `session`, `name`, `part`, `members` (how many), `horizon_ms` (L: how far ahead every event is scheduled), `latency_ms` (half the round trip to the hub), `clock_offset_ms` (your clock against the session clock) and `clock_bound_ms` (how sure that is), `delivered` (events played), `late` (events that arrived after their time: should stay 0; if not, the hub needs a larger horizon) and the `sched_ahead_time` in use.",
          args:          [],
          opts:          nil,
          accepts_block: false,
          examples:      ["puts tutti_status", "puts tutti_status[:late]"]

      def tutti_members
        s = __tutti_need_plugin!
        return [] unless s[:mode] == "session"
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
          doc:           "Returns a list with one map per member of the session (`id`, `name`, `part`). With a plugin that does not report the members' names, only the number of entries is meaningful.",
          args:          [],
          opts:          nil,
          accepts_block: false,
          examples:      ["puts tutti_members.length"]

      def tutti_bpm(bpm)
        bpm = bpm.to_f
        raise "tutti_bpm: the tempo must be between 20 and 999 bpm" unless bpm >= 20 && bpm <= 999
        s = __tutti_need_plugin!
        raise "tutti_bpm: not in a session (tutti_join first)" unless s[:mode] == "session"
        m = __tutti_link.request(2.0, "/cmd", "tutti", "bpm", bpm) do |a, r|
          (a == "/done" || a == "/fail") && r[0] == "/cmd"
        end
        if m.nil? || m[0] == "/fail"
          raise "tutti_bpm: this tutti plugin cannot propose tempo changes yet " \
                "(it needs `/cmd tutti bpm`; see docs/sonicpi.md). Agree a tempo and " \
                "use use_bpm and tutti_sync bpm: instead."
        end
        __info "tutti: proposed #{bpm} bpm from the next bar"
        bpm
      end
      doc name:          :tutti_bpm,
          introduced:    Version.new(3,2,2),
          summary:       "Propose a new session tempo",
          doc:           "Asks the session to change its tempo to `bpm` from the next bar: every member switches on the same beat. It changes the session's tempo (what `tutti_sync` lines up to); your own `use_bpm` stays as it is. Needs a tutti plugin with tempo commands; see the guide.",
          args:          [[:bpm, :number]],
          opts:          nil,
          accepts_block: false,
          examples:      ["tutti_bpm 128"]

      def tutti_sync(*args)
        opts = args.last.is_a?(Hash) ? args.pop : {}
        bars = (args.first || opts[:bars] || 1).to_f
        s = __tutti_need_plugin!
        raise "tutti_sync: not in a session (tutti_join first)" unless s[:mode] == "session"
        __tutti_apply_latency(s[:horizon_ms])
        sat = current_sched_ahead_time.to_f
        quantum = (s[:quantum] || opts[:beats_per_bar] || 4).to_f
        if s.key?(:timeline_t0_ns) && s.key?(:bpm) && !opts[:bpm]
          # the session's tempo timeline, exactly: beat `timeline_beat0` at
          # session time `timeline_t0_ns` (ns since 1900); beat 0 on this
          # machine's wall clock
          bpm = s[:bpm].to_f
          beat_s = 60.0 / bpm
          bar_s = quantum * beat_s
          t0 = (s[:timeline_t0_ns].to_i - 2_208_988_800 * 1_000_000_000) / 1e9 -
               s[:clock_offset_ms].to_f / 1000.0
          first = t0 - s[:timeline_beat0].to_f * beat_s
        elsif s.key?(:bpm) && s.key?(:bar_phase) && !opts[:bpm]
          # an older plugin: beats into the bar when it answered
          bpm = s[:bpm].to_f
          beat_s = 60.0 / bpm
          bar_s = quantum * beat_s
          now_sess = Time.now.to_f
          into = (s[:bar].to_f % bars) * bar_s + s[:bar_phase].to_f * beat_s
          first = now_sess - into
        else
          # no timeline from the plugin: bars of the given (or current) tempo
          # counted from the session clock's origin, the same on every member
          bpm = (opts[:bpm] || current_bpm).to_f
          bar_s = quantum * 60.0 / bpm
          span = bar_s * bars
          sess = __tutti_session_now(s)
          first = Time.now.to_f - (sess % span)
        end
        span = bar_s * bars
        vt = __system_thread_locals.get(:sonic_pi_spider_time)
        earliest = [vt ? vt.to_f : 0.0, Time.now.to_f - 0.005].max + sat - 0.002
        k = ((earliest - first) / span).ceil
        boundary = first + k * span
        target_vt = boundary - sat
        __system_thread_locals.set(:sonic_pi_spider_time, Time.at(target_vt).freeze)
        wait = target_vt - Time.now.to_f
        Kernel.sleep(wait) if wait > 0
        boundary
      end
      doc name:          :tutti_sync,
          introduced:    Version.new(3,2,2),
          summary:       "Wait for the next bar of the session",
          doc:           "Sleeps until the next bar line of the session (or the next boundary of `bars` bars), so that what you play next starts on a bar that every member agrees on. Call it before starting live loops (they inherit the time) or at the top of a live loop, on every member, and the loops line up across machines: two members whose loops start with `tutti_sync 4` begin on the same 4-bar boundary.

Bars are counted on the session clock. When the plugin reports the session tempo, its bars are used; otherwise bars of `bpm:` (default: your current bpm) with `beats_per_bar:` beats (default 4), counted from the session clock's origin, which is the same on every member as long as everyone uses the same tempo.",
          args:          [[:bars, :number]],
          opts:          {bpm: "Tempo of the bars to line up to (default: the session's, else your current bpm)",
                          beats_per_bar: "Beats in a bar (default: the session's, else 4)"},
          accepts_block: false,
          examples:      ["use_bpm 120
tutti_sync
live_loop :drums do
  sample :bd_haus
  sleep 1
end", "live_loop :chords do
  tutti_sync 4   # every 4 bars, wait for the session's 4-bar line
  play_chord chord(:e3, :minor)
  sleep 15
end"]
    end
  end
end
