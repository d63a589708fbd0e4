// The session's beat inside a synth: UGens of the tutti plugin (TuttiProxy.so,
// loaded by scsynth with the plugin). They follow the session's timeline
// (tempo, beat, quantum) sample-accurately on every member's server; without a
// session they follow the server's local grid. See the help files.

// The session's beat (beats since the timeline's beat 0).
TuttiBeat : UGen {
	*ar { ^this.multiNew('audio') }
	*kr { ^this.multiNew('control') }
}

// The beat within the bar: 0 <= phase < quantum; quantum <= 0: the session's own.
TuttiPhase : UGen {
	*ar { arg quantum = 0; ^this.multiNew('audio', quantum) }
	*kr { arg quantum = 0; ^this.multiNew('control', quantum) }
}

// The session's tempo in beats per second (as TempoClock's tempo).
TuttiTempo : UGen {
	*ar { ^this.multiNew('audio') }
	*kr { ^this.multiNew('control') }
}

// A trigger (1 for one sample, else 0) on every 1/division of a beat, at the
// sample nearest the grid; at control rate, in the control block that holds it.
TuttiTrig : UGen {
	*ar { arg division = 1; ^this.multiNew('audio', division) }
	*kr { arg division = 1; ^this.multiNew('control', division) }
}
