#!/usr/bin/env python3
"""The plugin's Link bridge through its feed and its setting (docs/plugin.md):
subscribe to the session feed on the proxy port and read /tutti/link, turn
the bridge off with /cmd tutti link off and read it again, then on.

    feedlink.py PROXY_PORT

Prints one JSON object: the /tutti/link arguments heard on subscribing, after
"off" and after "on" again (the last heard within 5 s), and the /cmd answers.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples", "osc"))
import tuttiosc  # noqa: E402


def main():
    c = tuttiosc.Udp(int(sys.argv[1]))
    out = {}

    def listen(key, until, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pkt = c.recv(end - time.monotonic())
            if pkt is None:
                break
            for addr, args in tuttiosc.messages(pkt):
                if addr == "/tutti/link":
                    out[key] = args
                    if until(args):
                        return
                elif addr in ("/done", "/fail") and args and args[0] == "/cmd":
                    out.setdefault("answers", []).append([addr] + list(args[1:]))

    c.send(tuttiosc.message("/cmd", "tutti", "notify", 1))
    listen("subscribed", lambda a: True, 3)
    c.send(tuttiosc.message("/cmd", "tutti", "link", "off"))
    listen("off", lambda a: a[0] == "off", 5)
    c.send(tuttiosc.message("/cmd", "tutti", "link", 1))
    listen("on", lambda a: a[0] == "active" and a[1] >= 1, 8)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
