// Tutti against a feed that sclang sends itself (TuttiTestFeed): state,
// callbacks, commands, latency, repeats and epochs.
TestTutti : UnitTest {
	var server, tutti, cmds, cmdFunc;

	setUp {
		server = TuttiTestFeed.server;
		cmds = List.new;
		// what Tutti sends its "proxy" arrives here
		cmdFunc = OSCFunc({ |msg| cmds.add(msg) }, '/cmd', NetAddr.localAddr).fix;
		tutti = Tutti(server);
	}

	tearDown {
		tutti.free;
		cmdFunc.free;
		server.remove;
	}

	// wait until sclang has handled the feed's messages sent so far
	settle {
		var ok = TuttiTestFeed.sync;
		this.assert(ok, "the feed's messages came back", report: ok.not)
	}

	test_subscribes_and_unsubscribes {
		this.settle;
		this.assert(cmds.any { |m| m == ['/cmd', \tutti, \notify, 1] },
			"a new Tutti subscribes: /cmd tutti notify 1 (sent: %)".format(cmds));
		tutti.free;
		this.settle;
		this.assert(cmds.any { |m| m == ['/cmd', \tutti, \notify, 0] },
			"free unsubscribes: /cmd tutti notify 0");
		this.assert(Tutti.all[server].isNil, "free forgets the Tutti");
		tutti = Tutti(server); // for tearDown
	}

	test_one_tutti_per_server {
		this.assert(Tutti(server) === tutti, "Tutti(server) twice is one object");
	}

	test_commands {
		tutti.join("tcp://hub.example.org:7770", "friday", "anna", "/tmp/anna.journal");
		tutti.join("tcp://hub.example.org:7770", \friday, \bruno);
		tutti.join("tcp://hub.example.org:7770", \friday, \carla, role: \conductor);
		tutti.proposeBpm(133);
		tutti.proposeTransport(false);
		tutti.leave;
		this.settle;
		cmds = cmds.reject { |m| m[2] == \notify };
		this.assertEquals(cmds[0], ['/cmd', \tutti, \join, 'tcp://hub.example.org:7770',
			\friday, \anna, '/tmp/anna.journal'], "join with a journal");
		this.assertEquals(cmds[1], ['/cmd', \tutti, \join, 'tcp://hub.example.org:7770',
			\friday, \bruno], "join without a journal");
		this.assertEquals(cmds[2], ['/cmd', \tutti, \join, 'tcp://hub.example.org:7770',
			\friday, \carla, '', \conductor], "join with a role and no journal");
		this.assertEquals(cmds[3][0..2], ['/cmd', \tutti, \bpm], "proposeBpm sends /cmd tutti bpm");
		this.assertFloatEquals(cmds[3][3], 133, "the bpm as a number");
		this.assertEquals(cmds[4], ['/cmd', \tutti, \transport, 0], "proposeTransport(false)");
		this.assertEquals(cmds[5], ['/cmd', \tutti, \leave], "leave");
	}

	test_session_status_and_callbacks {
		var sessions = List.new, timelines = List.new, memberLists = List.new, ready = false;
		var t0 = Main.elapsedTime - 10, st, now;
		tutti.onSession = { |t, s| sessions.add(s) };
		tutti.onTimeline = { |t, tl| timelines.add(tl) };
		tutti.onMembers = { |t, m| memberLists.add(m) };
		tutti.doWhenReady { ready = true };
		this.assert(tutti.isReady.not, "not ready before the feed");
		TuttiTestFeed.session(server, "session", 0.15, 0.25, 3, 7, 2, "conductor");
		TuttiTestFeed.timeline(server, 0, t0, 16, 100, 4, 1);
		TuttiTestFeed.members(server, [[1, "anna", 0], [4, "bruno", 1], [7, "carla", 2]]);
		this.settle;
		this.assert(ready, "doWhenReady ran once session and timeline came");
		st = tutti.status;
		now = Main.elapsedTime;
		this.assertEquals(st[\mode], \session, "status: mode");
		this.assertFloatEquals(st[\horizon], 0.15, "status: horizon (L, s)");
		this.assertFloatEquals(st[\latency], 0.25, "status: latency (s)");
		this.assertEquals(st[\members], 3, "status: members");
		this.assertEquals(st[\id], 7, "status: id");
		this.assertEquals(st[\part], 2, "status: part");
		this.assertEquals(st[\role], \conductor, "status: role");
		this.assertFloatEquals(st[\bpm], 100, "status: bpm");
		this.assertFloatEquals(st[\quantum], 4, "status: quantum");
		this.assertEquals(st[\playing], true, "status: playing");
		// 10 s at 100 bpm after beat 16
		this.assertFloatEquals(st[\beat], 16 + ((now - t0) * 100 / 60), "status: beat now", 0.001);
		this.assert(st.values.every { |v| v.isNumber or: { v.isKindOf(Symbol) } or: { v.isKindOf(Boolean) } },
			"status holds numbers (mode and role as Symbols): %".format(st));
		this.assertFloatEquals(server.latency, 0.25, "server.latency is the session's");
		this.assertEquals(sessions.size, 1, "onSession once");
		this.assertEquals(timelines.size, 1, "onTimeline once");
		this.assertEquals(memberLists.size, 1, "onMembers once");
		this.assertEquals(tutti.members.collect(_[\name]), [\anna, \bruno, \carla], "members: names");
		this.assertEquals(tutti.members.collect(_[\part]), [0, 1, 2], "members: parts");
		this.assertEquals(tutti.members.collect(_[\id]), [1, 4, 7], "members: ids");
	}

	test_timeline_time_is_the_bundle_timetag {
		// the bundle comes at once; its start is 3 s ahead: `time` must be the
		// start (the timetag), not the moment it arrived
		var start = Main.elapsedTime + 3;
		TuttiTestFeed.session(server);
		TuttiTestFeed.timeline(server, 0, start, 0, 120, 4, 1);
		this.settle;
		this.assert(tutti.pending.size == 1, "a timeline that starts later is pending");
		this.assertFloatEquals(tutti.pending[0][\time], start,
			"its time is the bundle's timetag in sclang's time base", 0.0001);
	}

	test_timeline_without_timetag_is_estimated {
		var start = Main.elapsedTime + 3;
		TuttiTestFeed.session(server);
		TuttiTestFeed.timeline(server, 0, start, 0, 120, 4, 1, asBundle: false);
		this.settle;
		this.assertFloatEquals(tutti.pending[0][\time], start,
			"a plain /tutti/timeline: time from at_local and the wall clock", 0.001);
	}

	test_pending_then_in_force {
		var now = Main.elapsedTime;
		TuttiTestFeed.session(server);
		TuttiTestFeed.timeline(server, 0, now - 5, 0, 120, 4, 1);
		this.settle;
		// a change agreed: a new seq, the timeline in force, then the change
		TuttiTestFeed.timeline(server, 1, now - 5, 0, 120, 4, 1);
		TuttiTestFeed.timeline(server, 1, now + 0.4, 12, 90, 4, 1);
		this.settle;
		this.assertFloatEquals(tutti.bpm, 120, "120 bpm in force before the change");
		this.assertEquals(tutti.pending.collect(_[\bpm]).asArray, [90.0], "the change pending");
		// the plugin's clock estimate moved: both again, same seq
		TuttiTestFeed.timeline(server, 1, now - 5.00002, 0, 120, 4, 1, atSession: tutti.timeline[\atSession]);
		TuttiTestFeed.timeline(server, 1, now + 0.39998, 12, 90, 4, 1, atSession: tutti.pending[0][\atSession]);
		this.settle;
		this.assertEquals(tutti.pending.size, 1, "a repeat keeps one change pending");
		this.assertFloatEquals(tutti.pending[0][\time], now + 0.39998, "at its new time", 0.0001);
		0.4.wait;
		this.assertFloatEquals(tutti.bpm, 90, "the change in force at its time");
		this.assert(tutti.pending.isEmpty, "nothing pending");
		// another change agreed, then withdrawn by a newer schedule
		TuttiTestFeed.timeline(server, 2, now + 0.4, 12, 90, 4, 1);
		TuttiTestFeed.timeline(server, 2, now + 30, 40, 100, 4, 1);
		this.settle;
		this.assertEquals(tutti.pending.size, 1, "a second change pending");
		TuttiTestFeed.timeline(server, 3, now + 0.4, 12, 90, 4, 1);
		this.settle;
		this.assert(tutti.pending.isEmpty, "a new seq's first timeline ends what was ahead");
		this.assertFloatEquals(tutti.bpm, 90, "90 bpm in force");
	}

	test_new_epoch_on_join {
		var now = Main.elapsedTime;
		TuttiTestFeed.session(server, "solo", 0, 0.2, 1, 0, 0, "");
		TuttiTestFeed.timeline(server, 2, now - 5, 0, 120, 4, 1);
		TuttiTestFeed.timeline(server, 2, now + 30, 64, 130, 4, 1);
		this.settle;
		this.assertEquals(tutti.pending.size, 1, "a solo change pending");
		// joining: the session's timeline, which began long before
		TuttiTestFeed.session(server, "session", 0.15, 0.2, 2, 5, 1, "performer");
		TuttiTestFeed.timeline(server, 1, now - 60, 0, 100, 3, 1);
		this.settle;
		this.assertFloatEquals(tutti.bpm, 100, "the session's tempo after joining");
		this.assert(tutti.pending.isEmpty, "the solo change that was pending is gone");
		this.assertEquals(tutti.epoch, 2, "two epochs: solo, then the session");
		// the session's timeline again, mapped anew: the same epoch
		TuttiTestFeed.timeline(server, 1, now - 60.00005, 0, 100, 3, 1, atSession: tutti.timeline[\atSession]);
		this.settle;
		this.assertEquals(tutti.epoch, 2, "a repeat is no new epoch");
		this.assertEquals(tutti.prSchedule.size, 1, "and no second timeline");
	}

	test_join_and_leave_actions {
		var joined = 0, left = 0, now = Main.elapsedTime;
		TuttiTestFeed.session(server, "solo", 0, 0.2, 1, 0, 0, "performer");
		TuttiTestFeed.timeline(server, 0, now - 10, 0, 120, 4, 1);
		this.settle;
		tutti.join("tcp://127.0.0.1:1", "s", "anna", action: { joined = joined + 1 });
		TuttiTestFeed.session(server, "joining", 0, 0.2, 1, 0, 0, "performer");
		this.settle;
		this.assertEquals(joined, 0, "join's action waits while joining");
		TuttiTestFeed.session(server, "session", 0.15, 0.2, 2, 3, 1, "performer");
		this.settle;
		this.assertEquals(joined, 0, "join's action waits for the session's timeline");
		TuttiTestFeed.timeline(server, 0, now - 100, 8, 90, 4, 1);
		this.settle;
		this.assertEquals(joined, 1, "join's action runs once in the session with its timeline");
		this.assertFloatEquals(tutti.bpm, 90, "and the timeline is the session's by then");
		tutti.leave({ left = left + 1 });
		TuttiTestFeed.session(server, "solo", 0, 0.2, 1, 0, 0, "performer");
		this.settle;
		this.assertEquals(left, 1, "leave's action runs once solo");
	}

	test_fail_is_reported {
		var why;
		tutti.onFail = { |t, reason| why = reason };
		TuttiTestFeed.fail(server, "your role (performer) may not change the tempo");
		this.settle;
		this.assertEquals(why, "your role (performer) may not change the tempo", "onFail gets the reason");
	}

	test_latency_is_kept {
		TuttiTestFeed.session(server, latency: 0.3);
		this.settle;
		this.assertFloatEquals(server.latency, 0.3, "server.latency set from the feed");
		server.latency = 0.05;
		1.2.wait;
		this.assertFloatEquals(server.latency, 0.3, "server.latency put back within a second");
		TuttiTestFeed.session(server, latency: 0.4);
		this.settle;
		this.assertFloatEquals(server.latency, 0.4, "a new latency from the feed is taken");
	}
}
