#!/usr/bin/env python3
"""Writes the manual pages of the tutti program from its own help texts.

    manpages.py TUTTI OUTDIR

tutti(1) from `tutti help`, and tutti-COMMAND(1) from `tutti COMMAND --help`
for every command that `tutti help` lists, so a page can never describe an
option the program does not have. Each help text is usage lines, then
paragraphs and option lists: the usage becomes SYNOPSIS, the rest
DESCRIPTION, kept as the program prints it (preformatted, so its option
tables stay aligned).
"""
import os
import re
import subprocess
import sys


def roff_text(line):
    """One line as roff text: backslashes and hyphens escaped, and a line
    starting with . or ' kept from being read as a request."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def help_of(tutti, *args):
    # A command prints its help on stdout; a few print it on stderr.
    r = subprocess.run([tutti, *args], capture_output=True, text=True, timeout=30)
    text = r.stdout or r.stderr
    if args[-1] == "--help" and not text.startswith("usage:"):
        sys.exit("manpages: %s %s printed no usage: %s" % (tutti, " ".join(args),
                                                           text.strip()[:200]))
    return text


def commands(text):
    """(name, summary) of each command in `tutti help`'s list."""
    out, body = [], text.split("commands:", 1)[1]
    for line in body.splitlines():
        m = re.match(r"  (\w+)\s+(.*)", line)
        if m:
            out.append([m.group(1), m.group(2)])
        elif out and line.startswith("            "):
            out[-1][1] += " " + line.strip()
        elif out and not line.strip():
            break
    return [(n, s) for n, s in out if n not in ("help", "version")]


def split_usage(text):
    """The usage lines (without "usage: ") and the rest."""
    lines = text.rstrip("\n").splitlines()
    usage, i = [], 0
    while i < len(lines) and lines[i].strip() and (i == 0 or lines[i].startswith(" ")):
        usage.append(re.sub(r"^usage: ", "", lines[i]))
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    return usage, lines[i:]


def page(name, summary, version, usage, rest, see_also):
    out = ['.TH %s 1 "" "tutti %s" "tutti manual"' % (name.upper(), version),
           ".SH NAME", "%s \\- %s" % (roff_text(name), roff_text(summary)),
           ".SH SYNOPSIS", ".nf"]
    out += [roff_text(u) for u in usage]
    out += [".fi", ".SH DESCRIPTION", ".nf"]
    out += [roff_text(l) if l.strip() else "" for l in rest]
    out += [".fi", ".SH SEE ALSO", ",\n".join(".BR %s (1)" % s for s in see_also)]
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tutti, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    version = help_of(tutti, "version").split()[1]
    top = help_of(tutti, "help")
    cmds = commands(top)
    names = ["tutti-" + n for n, _ in cmds]
    lines = top.rstrip("\n").splitlines()
    usage = [re.sub(r"^usage: ", "", lines[0])]
    rest = lines[1:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    written = []
    with open(os.path.join(outdir, "tutti.1"), "w") as f:
        f.write(page("tutti", "one live performance, many places", version, usage, rest,
                     names + ["scsynth"]))
    written.append("tutti.1")
    for n, summary in cmds:
        u, r = split_usage(help_of(tutti, n, "--help"))
        with open(os.path.join(outdir, "tutti-%s.1" % n), "w") as f:
            f.write(page("tutti-" + n, summary, version, u, r, ["tutti"]))
        written.append("tutti-%s.1" % n)
    print("manpages: %d pages in %s" % (len(written), outdir))


if __name__ == "__main__":
    main()
