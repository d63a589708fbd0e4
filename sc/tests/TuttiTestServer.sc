// A Server object that keeps what is sent to it with Server:sendBundle, as
// [time, messages], and sends nothing: the time is sclang's
// (thisThread.seconds + the bundle's latency), from which sclang's primitive
// makes the timetag. (Sent to sclang itself, the /s_new of a pattern, an
// int32 command number in place of the address, is refused by sclang's OSC
// parser.)
TuttiTestServer : Server {
	var <>sent;

	sendBundle { |time ... msgs|
		sent !? { sent.add([thisThread.seconds + time, msgs]) }
	}
}
