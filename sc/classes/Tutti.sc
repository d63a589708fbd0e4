/*
Tutti: one scsynth (with the tutti plugin) in a tutti session, seen from sclang.

Design notes
------------
- Everything comes from the plugin's session feed: Tutti subscribes once
  ("/cmd tutti notify 1" to the proxy port, again whenever the server boots)
  and then only listens. The plugin sends the current state at once and
  every change after it: /tutti/timeline (each agreed timeline change, at
  least the session's change lead before it takes effect, in a bundle
  timetagged with the instant it starts on this machine's wall clock),
  /tutti/session (mode, L, the latency clients should use, the member's id,
  part and role) and /tutti/members. Nothing is polled. The feed's fields
  are in docs/plugin.md ("The session feed").
- Time. sclang receives a bundle's timetag already converted into its own
  time base (Main.elapsedTime, seconds since sclang started; OSCFunc's `time`
  argument), with the same offset it uses to stamp the bundles it sends. A
  timeline's start therefore arrives as `time` in exactly the units in which
  TuttiClock schedules, and a note scheduled for beat b leaves with the
  timetag the plugin maps back to b's session time; no wall-clock reading
  of sclang's own is involved (see TuttiClock's design notes for the
  accuracy this gives).
- A timeline as an Event: seq, atSession (s since 1900), atLocal (s since
  1970, this machine's wall clock), beat, bpm, quantum, playing (Boolean),
  and time (the same instant as atLocal in Main.elapsedTime's base).
- The schedule. A timeline is known by its instant (atSession): the feed
  sends, whenever the schedule changes (a new seq: changes agreed since
  joining) or its mapping to this machine's clock moves (the same seq), the
  timeline in force and then every agreed change still ahead, in the order
  they take effect, and a client keeps the last message about each instant.
  A new seq's first timeline ends the changes that were ahead (those still
  agreed come again after it). The feed sends /tutti/session before the
  timelines when the mode or the member id changes (join, leave): the first
  timeline after such a change starts a new schedule (an epoch), which may
  start earlier than the one before (a session's timeline began when its
  hub started). `timeline` is the one in force now, `pending` the rest.
  join's action runs once the mode is session and the session's first
  timeline has come, so a TuttiClock made in it starts on the session's grid.
- Latency. The session needs every client to schedule at least the feed's
  `latency` ahead; Tutti sets server.latency to it on every /tutti/session
  and puts it back (with a warning) when something else changed it, checked
  once a second. TuttiClock maps beats to times that latency early, so notes
  sound on the beat.
- One Tutti per Server object (Tutti(s) answers the same one again).
*/
Tutti {
	classvar <all;

	var <server;
	var <session;          // Event: mode, horizon, latency, members, id, part, role
	var schedule;          // the timelines known, by instant (see -prNote)
	var version;           // the seq of the schedule
	var fresh = true;      // the next timeline starts a new schedule
	var <members;          // Array of Events: id, name, part
	var <clocks;           // TuttiClocks following this session
	var <epoch = 0;        // counts the modes and member ids (see design notes)
	var <>onTimeline, <>onSession, <>onMembers, <>onFail;
	var responders, bootFunc, readyActions, joinAction, leaveAction, joinEpoch;
	var latencySet, watcher;

	*new { |server|
		server = server ?? { Server.default };
		all = all ?? { IdentityDictionary.new };
		^all[server] ?? {
			var tutti = super.new.prInit(server);
			all[server] = tutti;
			tutti
		}
	}

	*default { ^this.new(Server.default) }

	// A Server object for a tutti proxy port, with the sizes a session's scsynth
	// has (docs/supercollider.md): `parts` parts of `buffers` buffers, `audioBuses`
	// private audio buses and `controlBuses` control buses each; sclang gives
	// client 0 (this one) the first part's share.
	*remote { |port = 57121, name = \tutti, inputs = 2, outputs = 2, parts = 32,
		buffers = 1024, audioBuses = 128, controlBuses = 1024|
		var o = ServerOptions.new;
		o.numInputBusChannels = inputs;
		o.numOutputBusChannels = outputs;
		o.numPrivateAudioBusChannels = audioBuses * parts;
		o.numBuffers = buffers * parts;
		o.numControlBusChannels = controlBuses * parts;
		o.maxLogins = parts;
		^Server.remote(name, NetAddr("127.0.0.1", port), o)
	}

	// ------------------------------------------------------------ commands

	// invite: an invitation's text or its file; passphrase: the session's;
	// hubKey: the hub's key to pin, 64 hex digits (docs/security.md)
	join { |hub, session, name, journal, role, action, invite, passphrase, hubKey|
		var args = [hub, session, name].collect(_.asString);
		var cred = [];
		if(invite.notNil) {
			invite = invite.asString;
			if(invite.beginsWith("tutti-invite-").not) { invite = invite.standardizePath };
			cred = cred ++ ["invite", invite]
		};
		if(passphrase.notNil) { cred = cred ++ ["passphrase", passphrase.asString] };
		if(hubKey.notNil) { cred = cred ++ ["hub_key", hubKey.asString] };
		if(journal.notNil or: { role.notNil } or: { cred.notEmpty }) {
			args = args.add((journal ? "").asString)
		};
		if(role.notNil or: { cred.notEmpty }) { args = args.add((role ? "").asString) };
		args = args ++ cred;
		joinAction = action;
		joinEpoch = epoch;
		this.prCmd(\join, *args)
	}

	leave { |action|
		leaveAction = action;
		this.prCmd(\leave)
	}

	// Ask the session for a tempo: it takes effect on every member at the
	// first bar line at least the change lead ahead (conductor and admin only;
	// a refusal comes back through onFail and is posted).
	proposeBpm { |bpm|
		this.prCmd(\bpm, bpm.asFloat)
	}

	proposeTransport { |playing = true|
		this.prCmd(\transport, playing.binaryValue)
	}

	subscribe {
		this.prCmd(\notify, 1)
	}

	free {
		this.prCmd(\notify, 0);
		responders.do(_.free);
		responders = nil;
		ServerBoot.remove(bootFunc, server);
		CmdPeriod.remove(this);
		watcher !? { watcher.stop };
		clocks.copy.do(_.stop);
		all.removeAt(server);
	}

	// ------------------------------------------------------------ state

	isReady { ^schedule.notEmpty and: { session.notNil } }

	// Evaluate func (with this Tutti) once the feed's first state is here.
	doWhenReady { |func|
		if(this.isReady) { func.value(this) } { readyActions = readyActions.add(func) }
	}

	// Inside a Routine: wait until the feed's first state is here (at most
	// `timeout` seconds; answers whether it came).
	sync { |timeout = 5|
		var c = Condition(this.isReady);
		this.doWhenReady { c.test = true; c.signal };
		SystemClock.sched(timeout, { c.test = true; c.signal; nil });
		c.wait;
		^this.isReady
	}

	timeline {
		var now = Main.elapsedTime;
		^schedule.select { |x| x[\time] <= now }.last ?? { schedule.first }
	}

	pending {
		var now = Main.elapsedTime;
		^schedule.select { |x| x[\time] > now }
	}

	mode { ^session !? { session[\mode] } }
	latency { ^session !? { session[\latency] } }
	horizon { ^session !? { session[\horizon] } }
	bpm { ^this.timeline !? { |tl| tl[\bpm] } }
	quantum { ^this.timeline !? { |tl| tl[\quantum] } }
	playing { ^this.timeline !? { |tl| tl[\playing] } }

	// The session's beat sounding at sclang time `time` (default: now).
	beatAt { |time|
		var tl = this.timeline;
		^tl !? { tl[\beat] + ((time ?? { Main.elapsedTime }) - tl[\time] * tl[\bpm] / 60) }
	}
	beats { ^this.beatAt(Main.elapsedTime) }

	// Everything the feed said, as numbers (mode and role as Symbols).
	status {
		var st = (session ?? { () }).copy;
		var tl = this.timeline;
		if(tl.notNil) {
			st.putAll((seq: tl[\seq], bpm: tl[\bpm], quantum: tl[\quantum],
				playing: tl[\playing], beat: this.beats))
		};
		st[\pending] = this.pending.size;
		^st
	}

	// ------------------------------------------------------------ private

	prInit { |argServer|
		var addr;
		server = argServer;
		addr = server.addr;
		schedule = [];
		members = [];
		clocks = List.new;
		responders = [
			OSCFunc({ |msg, time| this.prTimeline(msg, time) }, '/tutti/timeline', addr),
			OSCFunc({ |msg| this.prSession(msg) }, '/tutti/session', addr),
			OSCFunc({ |msg| this.prMembers(msg) }, '/tutti/members', addr),
			OSCFunc({ |msg| this.prDone(msg) }, '/done', addr),
			OSCFunc({ |msg| this.prFail(msg) }, '/fail', addr)
		].collect(_.fix);
		bootFunc = { this.subscribe };
		ServerBoot.add(bootFunc, server);
		CmdPeriod.add(this);
		this.prWatchLatency;
		this.subscribe;
	}

	prCmd { |what ... args|
		server.sendMsg('/cmd', \tutti, what, *args)
	}

	// /tutti/timeline seq at_session at_local beat bpm quantum playing, in a
	// bundle timetagged at_local: `time` is at_local in sclang's time base.
	prTimeline { |msg, time|
		var tl, estimate;
		if(msg.size < 8 or: { msg[1..7].any { |x| x.isNumber.not } }) {
			"tutti: a /tutti/timeline that is not seven numbers: %".format(msg).warn;
			^this
		};
		tl = (seq: msg[1].asInteger, atSession: msg[2], atLocal: msg[3], beat: msg[4],
			bpm: msg[5], quantum: msg[6], playing: msg[7] != 0, time: time);
		// A plain message (not a bundle) carries its receive time instead:
		// estimate from the wall clock (to about a millisecond) and say so.
		estimate = tl[\atLocal] - (Date.getDate.rawSeconds - Main.elapsedTime);
		if(absdif(estimate, time) > 0.01) {
			"tutti: /tutti/timeline came without its timetag; TuttiClock is only as exact as sclang's wall clock reading now".warn;
			tl[\time] = estimate;
		};
		this.prNote(tl);
	}

	// A timeline from the feed. The feed sends, whenever the schedule
	// changes (a new seq) or its mapping to this machine's clock moves (the
	// same seq), the timeline in force and then every change still ahead, in
	// order; a timeline is known by its instant (atSession).
	prNote { |tl|
		tl[\epoch] = epoch;
		tl[\key] = (tl[\atSession] * 1e6).round; // microseconds: one instant
		case
		{ fresh } {
			// the first timeline since the mode or member id changed
			schedule = [tl];
			fresh = false
		}
		{ tl[\seq] != version } {
			// a new schedule: this is its timeline in force; the changes still
			// ahead follow
			schedule = schedule.select { |x| x[\key] < tl[\key] }.add(tl)
		} {
			schedule = schedule.reject { |x| x[\key] == tl[\key] }.add(tl)
				.sort { |x, y| x[\key] <= y[\key] }
		};
		version = tl[\seq];
		clocks.do(_.prFollow(this));
		onTimeline.value(this, tl);
		this.changed(\timeline, tl);
		this.prCheckActions;
	}

	// The schedule: the timelines this member knows, by instant (Events as
	// -timeline); TuttiClock follows it.
	prSchedule { ^schedule }

	// /tutti/session mode horizon latency members id part role
	prSession { |msg|
		var st;
		if(msg.size < 8) {
			"tutti: a /tutti/session with too few fields: %".format(msg).warn;
			^this
		};
		st = (mode: msg[1].asSymbol, horizon: msg[2], latency: msg[3], members: msg[4],
			id: msg[5], part: msg[6], role: msg[7].asSymbol);
		this.prNoteSession(st);
	}

	prNoteSession { |st|
		var old = session;
		session = st;
		if(old.isNil or: { old[\mode] != st[\mode] } or: { old[\id] != st[\id] }) {
			// the feed sends this member's timelines for the new mode next
			epoch = epoch + 1;
			fresh = true;
		};
		this.prSetLatency(st[\latency]);
		onSession.value(this, st);
		this.changed(\session, st);
		this.prCheckActions;
	}

	// /tutti/members (id name part)...
	prMembers { |msg|
		members = msg.drop(1).clump(3).select { |m| m.size == 3 }.collect { |m|
			(id: m[0], name: m[1].asSymbol, part: m[2])
		};
		onMembers.value(this, members);
		this.changed(\members, members);
	}

	prDone { |msg|
		// /done /cmd "tutti <what>": nothing to do; join and leave complete
		// when /tutti/session says so.
	}

	prFail { |msg|
		var cmd = msg[1].asString;
		if(cmd == "/cmd" or: { cmd == "cmd" }) {
			"tutti: %".format(msg[2]).warn;
			onFail.value(this, msg[2].asString);
			this.changed(\fail, msg[2].asString);
		}
	}

	prSetLatency { |latency|
		if(latency.isNumber.not or: { latency <= 0 }) { ^this };
		latencySet = latency;
		server.latency = latency;
		clocks.do(_.prLatency(latency));
	}

	prWatchLatency {
		watcher !? { watcher.stop };
		watcher = Routine {
			loop {
				if(latencySet.notNil and: { server.latency != latencySet }) {
					"tutti: server.latency is the session's (% s here), so that notes reach every member in time and TuttiClock's notes sound on the beat; % was set back to it".format(latencySet, server.latency).warn;
					server.latency = latencySet;
				};
				1.wait;
			}
		}.play(SystemClock);
	}

	cmdPeriod { this.prWatchLatency }

	// Ready once session and timeline came; joined once the session says so
	// and a timeline of a new epoch (the session's) came after the request,
	// so that a TuttiClock made then starts on the session's grid; left once
	// solo.
	prCheckActions {
		var actions;
		if(this.isReady and: { readyActions.notNil }) {
			actions = readyActions;
			readyActions = nil;
			actions.do(_.value(this));
		};
		if(joinAction.notNil and: { this.mode == \session } and: { epoch > joinEpoch }
			and: { schedule.notEmpty } and: { schedule.last[\epoch] == epoch }) {
			actions = joinAction;
			joinAction = nil;
			actions.value(this);
		};
		if(leaveAction.notNil and: { this.mode == \solo }) {
			actions = leaveAction;
			leaveAction = nil;
			actions.value(this);
		};
	}

	prAddClock { |clock| clocks.add(clock) }
	prRemoveClock { |clock| clocks.remove(clock) }

	printOn { |stream|
		stream << "Tutti(" << server.name << ", " << (this.mode ? "no feed yet") << ")"
	}
}
