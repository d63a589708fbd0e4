/*
The plugin's session feed, played by sclang to itself, for the quark's unit
tests: a Server object whose address is sclang's own port stands for a
member's proxy, and these methods send it what the plugin sends, byte for
byte as the plugin encodes it (doubles as 'd', the timeline in a bundle
timetagged with its start on the wall clock), so the tests go through
sclang's OSC receive path and its timetag conversion like a real feed.
sclang's own sendMsg writes Floats as 32-bit 'f', too coarse for times
since 1900, hence the raw packets.
*/
TuttiTestFeed {
	classvar <count = 0, wall;

	// A Server object standing for a proxy: what Tutti sends it reaches
	// sclang itself, and what is sent from sclang comes from its address.
	*server {
		count = count + 1;
		^Server("tuttiUnitTest%".format(count).asSymbol, NetAddr.localAddr)
	}

	// wall clock (s since 1970) = Main.elapsedTime + this, to about a
	// microsecond; measured once, so that the same instant always gives the
	// same wall time (sclang 3.13 on Linux counts elapsed time on the system
	// clock, so the offset stays)
	*wallOffset { ^wall ?? { wall = Date.getDate.rawSeconds - Main.elapsedTime } }

	*u32 { |x|
		// x: a non-negative integer below 2^32, as an Integer or a Float
		^[24, 16, 8, 0].collect { |s| (x / (2 ** s)).floor % 256 }
	}
	*i32 { |i| ^this.u32(if(i < 0) { i + 4294967296.0 } { i.asFloat }) }
	*f64 { |f|
		f = f.asFloat;
		^this.i32(f.high32Bits) ++ this.i32(f.low32Bits)
	}
	*str { |s|
		var b = s.asString.ascii ++ [0];
		^b ++ (0 ! ((4 - (b.size % 4)) % 4))
	}

	// args: Integers as 'i', Floats as 'd', the rest as 's'
	*message { |addr, args|
		var tags = ",", data = [];
		args.do { |a|
			case
			{ a.isInteger } { tags = tags ++ "i"; data = data ++ this.i32(a) }
			{ a.isFloat } { tags = tags ++ "d"; data = data ++ this.f64(a) }
			{ tags = tags ++ "s"; data = data ++ this.str(a) }
		};
		^this.str(addr) ++ this.str(tags) ++ data
	}

	*bundle { |ntpSeconds, msg|
		var secs = ntpSeconds.floor, frac = ((ntpSeconds - secs) * 4294967296.0).floor;
		^this.str("#bundle") ++ this.u32(secs) ++ this.u32(frac) ++ this.u32(msg.size) ++ msg
	}

	*send { |server, bytes|
		server.addr.sendRaw(Int8Array.newFrom(bytes.collect { |b|
			b = b.asInteger;
			if(b > 127) { b - 256 } { b }
		}))
	}

	// /tutti/timeline starting at sclang time `time`, in a bundle timetagged
	// with that instant on the wall clock; atSession: the session time of
	// the start (default: the wall clock's, as if the session's clock were
	// this machine's)
	*timeline { |server, seq = 0, time, beat = 0, bpm = 120, quantum = 4, playing = 1, asBundle = true,
		atSession|
		var atLocal = time + this.wallOffset;
		var msg = this.message("/tutti/timeline", [seq.asInteger, (atSession ?? { atLocal + 2208988800.0 }).asFloat,
			atLocal, beat.asFloat, bpm.asFloat, quantum.asFloat, playing.asInteger]);
		this.send(server, if(asBundle) { this.bundle(atLocal + 2208988800.0, msg) } { msg });
	}

	*session { |server, mode = "session", horizon = 0.15, latency = 0.2, members = 2, id = 1,
		part = 1, role = "performer"|
		this.send(server, this.message("/tutti/session", [mode, horizon.asFloat, latency.asFloat,
			members.asInteger, id.asInteger, part.asInteger, role]));
	}

	*members { |server, triples|
		this.send(server, this.message("/tutti/members", triples.flatten))
	}

	// Inside a Routine: wait until sclang has handled everything sent to it
	// so far (a marker sent after it comes back: UDP to itself keeps the
	// order), at most `timeout` seconds; answers whether it did.
	*sync { |timeout = 5|
		var id = UniqueID.next, seen = false, end = Main.elapsedTime + timeout;
		var f = OSCFunc({ |msg| if(msg[1] == id) { seen = true } }, '/tutti_test_sync', NetAddr.localAddr);
		NetAddr.localAddr.sendMsg('/tutti_test_sync', id);
		while { seen.not and: { Main.elapsedTime < end } } { 0.01.wait };
		f.free;
		^seen
	}

	*fail { |server, why|
		this.send(server, this.message("/fail", ["/cmd", why]))
	}
}
