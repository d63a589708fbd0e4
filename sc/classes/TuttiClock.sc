/*
TuttiClock: a TempoClock whose beats are the session's beats (tutti's
LinkClock).

Design notes
------------
- The mapping. A timeline of the feed says: at sclang time `time` (the instant
  it starts, as it sounds) the session is at beat `beat`, going at `bpm`.
  The clock schedules `latency` (server.latency, the session's) ahead of what
  sounds, as LinkClock does: beat b is at clock seconds
      time + (b - beat) * 60 / bpm - latency,
  and an event played there is sent with that latency, so its bundle's
  timetag is exactly beat b's instant. The clock is set with TempoClock's
  own primitive _TempoClock_SetAll (tempo, beat, seconds at once), so
  everything queued, being in beats, moves with it.
- Changes land on their beat. A change is agreed at least the session's
  change lead (longer than any client's latency) before it starts; the feed
  sends it then. The clock schedules, on itself, the switch at the change's
  beat B (where the clock reaches B's instant minus latency, before anything
  for a later beat is sent), and there sets tempo, beat and seconds from the
  change. Notes at B sound at the same instant with either mapping; every
  note after B follows the new tempo. A change that arrives after the clock
  passed its start (it cannot under the session's rules; a member joining
  at that moment, a stalled sclang) is applied at once, with a warning.
- Repeats. The plugin sends the timeline in force again when its clock
  estimate moves the mapping by more than 0.01 ms; the clock takes the new
  anchor at once. A repeat of the timeline a change replaces, arriving while
  the clock already follows the change (the clock is latency ahead of what
  sounds), has an earlier instant and is not followed: within an epoch
  (Tutti's design notes) the clock only moves forward.
- Accuracy. sclang stamps a bundle with ElapsedTimeToOSC(logical time +
  latency) and converts a received bundle's timetag with the inverse, both
  with the same offset (gElapsedOSCoffset), which sclang 3.13 re-measures
  every 20 s against gettimeofday (microseconds): a re-measurement between a
  timeline's arrival and a note moves that note by the change of the offset,
  about a microsecond. Doubles add picoseconds. The rest is the plugin's: its
  clock estimate may move by up to 0.01 ms before the feed repeats the
  timeline. So a note sounds within 0.01 ms (+ ~1 us) of its beat's session
  time; the end-to-end test measures it from the journals.
- Bars are the session's: beatsPerBar is the session's quantum, counted from
  beat 0, so quant: 4 (or -1, one bar) aligns patterns of members that
  started at different times.
- What sounds "now" is -beatsSounding (the session's beat at this instant);
  -beats is the clock's scheduling beat, latency ahead of it.
*/
TuttiClock : TempoClock {
	var <tutti, <latency = 0, <quantum = 4, <playing = true;
	var <timeline;          // the timeline this clock follows now
	var scheduled;          // instants with a switch on the queue

	*new { |tutti, queueSize = 256|
		var t = tutti ?? { Tutti.default };
		var lat = t.latency ? 0;
		var tl = t.prSchedule.select { |x| x[\time] - lat <= Main.elapsedTime }.last;
		if(tl.isNil) {
			"TuttiClock: % has no timeline from the feed yet; the clock follows it when it comes (create clocks in Tutti:doWhenReady)".format(t).warn;
			^super.new(2, 0, nil, queueSize).prInitTutti(t)
		};
		^super.new(tl[\bpm] / 60, tl[\beat], tl[\time] - lat, queueSize).prInitTutti(t)
	}

	// The session decides the tempo: these propose it to the session (the
	// member's role must allow it); it takes effect on every member at the
	// first bar line at least the change lead ahead.
	tempo_ { |newTempo| tutti.proposeBpm(newTempo * 60) }
	etempo_ { |newTempo| this.tempo_(newTempo) }
	setTempoAtBeat { |newTempo, beats| this.tempo_(newTempo) }
	setTempoAtSec { |newTempo, secs| this.tempo_(newTempo) }

	beats_ { |beats|
		"TuttiClock: the beat is the session's; beats_ changes nothing".warn
	}
	beatsPerBar_ { |newBeatsPerBar|
		"TuttiClock: bars are the session's (quantum %); beatsPerBar_ changes nothing".format(quantum).warn
	}

	// The session's beat sounding at this instant.
	beatsSounding { ^this.secs2beats(Main.elapsedTime - latency) }

	stop {
		tutti !? { tutti.prRemoveClock(this) };
		super.stop
	}

	clear { |releaseNodes = true|
		super.clear(releaseNodes);
		// the switches to agreed changes are this clock's own: keep them
		scheduled = Set.new;
		tutti !? { this.prFollow(tutti) };
	}

	// ------------------------------------------------------------ private

	prInitTutti { |t|
		tutti = t;
		scheduled = Set.new;
		latency = t.latency ? 0;
		this.prFollow(t);
		t.prAddClock(this);
	}

	prSetAll { |tempo, beats, seconds|
		_TempoClock_SetAll
		^this.primitiveFailed
	}

	// The schedule changed: follow what is due for this clock (latency
	// ahead of what sounds) and put the switches to what comes later on the
	// queue. Within an epoch the clock only moves forward: a repeat of a
	// timeline earlier than the one it follows (the feed repeats the one in
	// force, by what sounds, while the clock already follows the next) is
	// kept but not followed.
	prFollow { |t|
		var now = Main.elapsedTime, sched = t.prSchedule, due, late;
		due = sched.select { |x| x[\time] - latency <= now }.last;
		if(due.notNil and: {
			timeline.isNil or: { due[\epoch] != timeline[\epoch] } or: { due[\key] >= timeline[\key] }
		}) {
			late = now - (due[\time] - latency);
			if(late > 0.001 and: { timeline.notNil } and: { due[\epoch] == timeline[\epoch] }
				and: { due[\key] > timeline[\key] }) {
				"TuttiClock: a tempo change reached sclang % ms after this clock passed its beat %; the notes sent since follow the old tempo".format(
					(late * 1000).round(0.1), due[\beat]).warn;
			};
			this.prApply(due);
		};
		sched.do { |x| if(x[\time] - latency > now) { this.prSwitchAt(x) } };
	}

	// The switch to a change, on this clock's queue at the change's beat (in
	// the mapping followed until then); at its time it takes the schedule's
	// latest word on that instant, if the instant is still in it.
	prSwitchAt { |tl|
		var key = tl[\key], at;
		if(scheduled.includes(key) or: { this.isRunning.not }) { ^this };
		at = this.secs2beats(tl[\time] - latency);
		// the same beat (to rounding, and to a mapping moved since by the plugin's
		// clock estimate) unless the change moves the beat itself
		if(absdif(at, tl[\beat]) < 1e-3) { at = tl[\beat] };
		scheduled.add(key);
		this.schedAbs(at, {
			var due = tutti.prSchedule.detect { |x| x[\key] == key };
			scheduled.remove(key);
			if(due.notNil and: { timeline.isNil or: { due[\epoch] != timeline[\epoch] }
				or: { due[\key] >= timeline[\key] } }) {
				this.prApply(due)
			};
			nil
		});
	}

	prApply { |tl|
		var oldTempo = this.tempo, oldPlaying = playing;
		timeline = tl;
		this.prSetAll(tl[\bpm] / 60, tl[\beat], tl[\time] - latency);
		if(tl[\quantum] != quantum) {
			quantum = tl[\quantum];
			// bars counted from beat 0, as the session counts them
			beatsPerBar = quantum;
			barsPerBeat = quantum.reciprocal;
			baseBarBeat = 0;
			baseBar = 0;
			this.changed(\meter);
		};
		playing = tl[\playing];
		if(tl[\bpm] / 60 != oldTempo) { this.changed(\tempo) };
		if(playing != oldPlaying) { this.changed(\transport, playing) };
	}

	prLatency { |lat|
		if(lat == latency) { ^this };
		latency = lat;
		timeline !? { |tl| this.prSetAll(tl[\bpm] / 60, tl[\beat], tl[\time] - latency) };
		tutti !? { this.prFollow(tutti) };
	}

}
