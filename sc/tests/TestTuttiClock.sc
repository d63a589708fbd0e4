// TuttiClock against a feed that sclang sends itself (TuttiTestFeed): the
// beat <-> time mapping, a change landing on its beat, quant across clocks
// started at different times, tempo_ as a proposal, repeats, latency, and
// the timetags of what a Pbind on the clock sends.
TestTuttiClock : UnitTest {
	var server, tutti, clocks, cmds, cmdFunc, startTime, startBeat, startBpm;

	setUp {
		server = TuttiTestFeed.server;
		cmds = List.new;
		cmdFunc = OSCFunc({ |msg| cmds.add(msg) }, '/cmd', NetAddr.localAddr).fix;
		tutti = Tutti(server);
		clocks = List.new;
	}

	tearDown {
		clocks.do(_.stop);
		tutti.free;
		cmdFunc.free;
		server.remove;
	}

	// wait until sclang has handled the feed's messages sent so far
	settle {
		var ok = TuttiTestFeed.sync;
		this.assert(ok, "the feed's messages came back", report: ok.not)
	}

	clock { ^clocks.add(TuttiClock(tutti)).last }

	// the clock seconds of beat b under a timeline, `latency` ahead
	secsOf { |tl, b, latency| ^tl[\time] + ((b - tl[\beat]) * 60 / tl[\bpm]) - latency }

	start { |latency = 0.2, bpm = 120, beat = 0, ago = 10|
		TuttiTestFeed.session(server, latency: latency);
		startTime = Main.elapsedTime - ago;
		startBeat = beat;
		startBpm = bpm;
		TuttiTestFeed.timeline(server, 0, startTime, beat, bpm, 4, 1);
		this.settle;
	}

	// A change as the plugin announces it: a new seq, the timeline in force
	// first, then the change.
	change { |seq, time, beat, bpm|
		TuttiTestFeed.timeline(server, seq, startTime, startBeat, startBpm, 4, 1);
		TuttiTestFeed.timeline(server, seq, time, beat, bpm, 4, 1);
	}

	test_mapping {
		var c, tl;
		this.start(0.2, 96, 8, 10);
		c = this.clock;
		tl = tutti.timeline;
		this.assertFloatEquals(c.tempo, 96 / 60, "tempo is the session's, in beats per second");
		this.assertFloatEquals(c.latency, 0.2, "latency is the session's");
		this.assertEquals(c.beatsPerBar, 4.0, "beatsPerBar is the session's quantum");
		[8, 20.25, 100, 1000.5].do { |b|
			this.assertFloatEquals(c.beats2secs(b), this.secsOf(tl, b, 0.2),
				"beat % at the session's time minus latency".format(b), 1e-9);
		};
		this.assertFloatEquals(c.beatsSounding, tutti.beats, "beatsSounding is the session's beat now", 0.001);
		this.assertFloatEquals(c.secs2beats(Main.elapsedTime) - c.beatsSounding, 0.2 * 96 / 60,
			"the clock schedules latency ahead of what sounds", 0.001);
	}

	test_change_lands_on_its_beat {
		var c, tl0, tl1, change, got = List.new, now;
		this.start(0.1, 120, 0, 10);
		c = this.clock;
		tl0 = tutti.timeline;
		// the change: at the next bar at least 1 s ahead, 180 bpm
		now = Main.elapsedTime;
		change = (c.beatsSounding + 2 + 4).roundUp(4);
		this.change(1, this.secsOf(tl0, change, 0), change, 180);
		this.settle;
		this.assertEquals(tutti.pending.size, 1, "the change is pending");
		tl1 = tutti.pending[0];
		// probes on the clock around the change
		[-1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2].do { |d|
			c.schedAbs(change + d, { got.add([d, thisThread.beats, thisThread.seconds, c.tempo]); nil })
		};
		this.wait({ got.size == 8 }, "the probes ran", 6);
		got.do { |g|
			var d = g[0], want = if(d < 0) { this.secsOf(tl0, change + d, 0.1) } { this.secsOf(tl1, change + d, 0.1) };
			this.assertFloatEquals(g[2], want,
				"beat change%: logical time on the %s grid".format(if(d < 0) { d } { "+" ++ d },
					if(d < 0) { "old" } { "new" }), 1e-6);
			if(d >= 0) { this.assertFloatEquals(g[3], 3, "tempo 180 bpm from beat change%".format(d)) }
		};
		this.assertFloatEquals(c.timeline[\bpm], 180, "the clock follows the change");
	}

	test_repeat_of_replaced_timeline_is_ignored {
		var c, tl0, change;
		this.start(0.3, 120, 0, 10);
		c = this.clock;
		tl0 = tutti.timeline;
		change = (c.beats + 2).roundUp(4);
		// the change starts 0.2 s from now: the clock (0.3 s ahead) follows it at once
		this.change(1, Main.elapsedTime + 0.2, change, 150);
		this.settle;
		// the plugin repeats the timeline in force (by what sounds) and the
		// change when its clock estimate moves
		this.change(1, Main.elapsedTime + 0.1, change, 150);
		this.settle;
		this.assertFloatEquals(c.timeline[\bpm], 150, "the clock keeps following the change");
		this.assertFloatEquals(c.tempo, 2.5, "at 150 bpm");
	}

	test_late_change_applies_at_once {
		var c, tl1;
		this.start(0.2, 120, 0, 10);
		c = this.clock;
		this.change(1, Main.elapsedTime - 1, 40, 140);
		this.settle;
		tl1 = tutti.timeline;
		this.assertFloatEquals(c.timeline[\bpm], 140, "a change already started is followed at once");
		this.assertFloatEquals(c.beats2secs(60), this.secsOf(tl1, 60, 0.2), "on its grid", 1e-9);
	}

	test_repeat_moves_the_mapping {
		var c, tl0;
		this.start(0.2, 120, 0, 10);
		c = this.clock;
		tl0 = tutti.timeline;
		// the plugin's clock estimate moved by 0.08 ms: the same timeline again
		TuttiTestFeed.timeline(server, 0, startTime + 0.00008, 0, 120, 4, 1, atSession: tl0[\atSession]);
		this.settle;
		this.assertFloatEquals(c.beats2secs(100), this.secsOf(tutti.timeline, 100, 0.2),
			"the new anchor is taken", 1e-9);
		this.assertFloatEquals(c.beats2secs(100) - this.secsOf(tl0, 100, 0.2), 0.00008,
			"0.08 ms later than before", 2e-6);
	}

	test_latency_change_moves_the_clock {
		var c, tl;
		this.start(0.2, 120, 0, 10);
		c = this.clock;
		tl = tutti.timeline;
		TuttiTestFeed.session(server, latency: 0.35);
		this.settle;
		this.assertFloatEquals(c.latency, 0.35, "the clock takes the session's new latency");
		this.assertFloatEquals(server.latency, 0.35, "and so does server.latency");
		this.assertFloatEquals(c.beats2secs(200), this.secsOf(tl, 200, 0.35), "beats sound where they did", 1e-9);
	}

	test_quant_aligns_clocks_started_apart {
		var a, b, firstA, firstB;
		this.start(0.2, 120, 0, 10.3);
		a = this.clock;
		Routine { firstA = [thisThread.beats, thisThread.seconds] }.play(a, quant: 4);
		0.7.wait; // a second member, later
		b = this.clock;
		Routine { firstB = [thisThread.beats, thisThread.seconds] }.play(b, quant: 4);
		this.wait({ firstA.notNil and: { firstB.notNil } }, "both started", 4);
		this.assertEquals(firstA[0] % 4, 0.0, "a started on a bar line (beat %)".format(firstA[0]));
		this.assertEquals(firstB[0] % 4, 0.0, "b started on a bar line (beat %)".format(firstB[0]));
		this.assertFloatEquals(b.beats2secs(firstA[0]), firstA[1],
			"both clocks put a's first beat at the same time", 1e-9);
		this.assertFloatEquals(a.beats2secs(firstB[0]), firstB[1],
			"and b's", 1e-9);
	}

	test_tempo_proposes {
		var c;
		this.start(0.2, 120, 0, 10);
		c = this.clock;
		cmds.clear;
		c.tempo = 150 / 60;
		this.settle;
		this.assertEquals(cmds.size, 1, "tempo_ sends one command");
		this.assertEquals(cmds[0][0..2], ['/cmd', \tutti, \bpm], "tempo_ proposes: /cmd tutti bpm");
		this.assertFloatEquals(cmds[0][3], 150, "150 bpm");
		this.assertFloatEquals(c.tempo, 2, "the clock keeps the session's tempo until the session changes it");
		c.beats = 1000;
		this.assertFloatEquals(c.beats2secs(4), this.secsOf(tutti.timeline, 4, 0.2), "beats_ changes nothing", 1e-9);
	}

	test_clear_keeps_the_change {
		var c, change, got;
		this.start(0.1, 120, 0, 10);
		c = this.clock;
		change = (c.beatsSounding + 2 + 2).roundUp(4);
		this.change(1, this.secsOf(tutti.timeline, change, 0), change, 200);
		this.settle;
		c.clear;
		c.schedAbs(change + 1, { got = thisThread.seconds; nil });
		this.wait({ got.notNil }, "the probe ran", 5);
		this.assertFloatEquals(c.tempo, 200 / 60, "the change came after clear");
		this.assertFloatEquals(got, this.secsOf(tutti.timeline, change + 1, 0.1), "on the new grid", 1e-6);
	}

	// What a Pbind on the clock sends: bundles stamped on the session's grid
	// (Server:sendBundle's time is thisThread.seconds + latency; sclang's
	// primitive turns that into the timetag), through a tempo change.
	test_pbind_timetags {
		var c, tl0, tl1, change, notes = List.new, player;
		server.remove;
		tutti.free;
		server = TuttiTestServer.new(\tuttiUnitTestPbind, NetAddr.localAddr);
		server.sent = notes;
		tutti = Tutti(server);
		this.start(0.2, 120, 0, 10);
		c = this.clock;
		tl0 = tutti.timeline;
		change = (c.beatsSounding + 2 + 4).roundUp(4);
		this.change(1, this.secsOf(tl0, change, 0), change, 150);
		this.settle;
		tl1 = tutti.pending[0];
		player = Pbind(\instrument, \tuttiProbe, \server, server, \dur, 0.5).play(c, quant: 4);
		this.wait({ c.beatsSounding > (change + 3) }, "played past the change", 8);
		player.stop;
		notes = notes.select { |n| n[1][0][0] == 9 and: { n[1][0][1] == \tuttiProbe } }.collect(_[0]);
		this.assert(notes.size >= 8, "notes sent (%)".format(notes.size));
		notes.do { |t|
			var tl = if(t < (tl1[\time] - 1e-6)) { tl0 } { tl1 };
			var beat = tl[\beat] + ((t - tl[\time]) * tl[\bpm] / 60);
			var err = absdif(beat, beat.round(0.5)) * 60 / tl[\bpm];
			this.assert(err < 1e-9,
				"a note's time is on the half-beat grid (beat %, off by % ns)".format(
					beat.round(0.001), (err * 1e9).round(0.01)), report: err >= 1e-9);
		};
		this.assert(notes.any { |t| t > (tl1[\time] + 0.1) }, "notes after the change");
		this.assert(notes.any { |t| t < tl1[\time] }, "notes before the change");
	}
}
