"""Writes docs/evaluation.md from what evaluate.py measured.

Every number in the report comes from the rows evaluate.py wrote to runs.csv
and members.csv (and the distributions next to them); the text around them
says what was measured and how, and which acceptance criteria held.
"""
import datetime
import os

NS = 1_000_000_000


def f(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def n(x, digits=1, unit=""):
    v = f(x)
    if v is None:
        return "–"
    return ("%%.%df%%s" % digits) % (v, unit)


def pm(row):
    d, j = int(float(row["delay_ms"])), int(float(row["jitter_ms"]))
    dist = "" if row["dist"] == "uniform" else " " + row["dist"]
    return "%d ± %d ms%s" % (d, j, dist)


def cond(row):
    s = pm(row)
    if f(row["loss_pct"]):
        s += ", %g %% loss" % f(row["loss_pct"])
    return s


def is_steady(row):
    return row["fault"] == "none" and not f(row["loss_pct"])


def verdict(ok):
    return "**pass**" if ok else "**FAIL**"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def write(path, outdir, rows, mrows, details, pngs, info, gname, mode_name, a, elapsed,
          has_auto):
    rel = os.path.relpath(os.path.abspath(outdir), os.path.dirname(os.path.abspath(path)))
    ok_rows = [r for r in rows if not r.get("error")]
    err_rows = [r for r in rows if r.get("error")]
    longer = sorted({f(r.get("seconds")) for r in rows
                     if f(r.get("seconds")) is not None and f(r["seconds"]) > a.seconds})
    longer_txt = "".join(" (the pareto queue %g s, below)" % x for x in longer)
    L = []
    w = L.append
    date = datetime.date.today().isoformat()
    loads = [f(r.get("load_before")) for r in rows if f(r.get("load_before")) is not None]
    w("# Evaluation: sessions over bad networks, measured")
    w("")
    w("Real sessions on one machine: a hub, one `tutti netsim` relay per member standing for "
      "that member's path to the hub, and the members — `tutti member` processes in sessions "
      "of 3, 8 and 16, real scsynth servers with the tutti plugin (each with its own client "
      "playing its part of `examples/trio`) in sessions of 3. Each run is one condition: "
      "one-way delay, jitter, loss, and nothing, a 3 s partition or a crash. This file is "
      "written by `scripts/eval/evaluate.py` from the data of the run it describes; the "
      "figures are in [`%s/runs.csv`](%s/runs.csv) (one row per run) and "
      "[`%s/members.csv`](%s/members.csv) (one row per member and run)." % (rel, rel, rel, rel))
    w("")
    grid_cmd = {"default": "", "quick": " --quick", "full": " --full", "smoke": " --smoke"}[gname]
    hz = " --auto-horizon" if mode_name == "auto" else (
        " --horizon rule" if mode_name == "fixed-rule" else " --horizon %s" % mode_name[6:-2])
    w("**This run:** the %s grid, %d runs in %.0f minutes, %s, horizon: %s. Machine: %s, "
      "%s cores, %s GiB, Linux %s; commit %s%s. Load average (1 min) at the start of the runs: "
      "%s to %s — other work shared the machine during some runs (`load_before` and "
      "`load_after` in runs.csv)." % (
          gname, len(rows), elapsed / 60, date,
          "automatic (the hub's `--auto-horizon`, starting at %g ms)" % a.auto_start
          if mode_name == "auto" else "fixed (%s)" % mode_name,
          info.get("cpu", "?"), info.get("cpus"), info.get("mem_gib", "?"), info.get("kernel"),
          info.get("commit", "?"), " with local changes" if info.get("dirty") else "",
          n(min(loads) if loads else None, 2), n(max(loads) if loads else None, 2)))
    w("")
    w("Rerun:")
    w("")
    w("```sh")
    w("cmake -S . -B build-eval -DTUTTI_BUILD_PLUGIN=ON && cmake --build build-eval -j2")
    w("python3 scripts/eval/evaluate.py%s%s    # writes docs/eval/ and this file" % (grid_cmd, hz))
    w("```")
    w("")
    w("`--quick` runs six conditions in about two minutes, the default grid takes about "
      "33 minutes (20 without the rehearsals, `--rehearse 0`), `--full` (102 runs) about 50 "
      "minutes without them and over an hour with them; `--only REGEX` picks runs by id, `--list` shows "
      "them. Run ids read `m08-d50-j10-l1-none`: `m` for `tutti member` processes (`s` for "
      "scsynth), 8 members, 50 ms one-way delay, ±10 ms jitter (uniform unless a letter "
      "follows: `p` pareto, `n` normal), 1 % loss, no fault; a last `-s1`, `-s2`, … marks "
      "another series of the relays' random draws under the same settings.")
    w("")
    if not has_auto:
        w("> The hub used here has no automatic horizon, so L was fixed (%s). The criteria about "
          "the automatic horizon are judged on that fixed L and say so." % mode_name)
        w("")

    # ------------------------------------------------------------ acceptance
    w("## Acceptance")
    w("")
    coherent = [r for r in ok_rows if r.get("coherent") == 1]
    mis = sum(int(f(r.get("misordered")) or 0) for r in ok_rows)
    miss = sum(int(f(r.get("missing")) or 0) for r in ok_rows)
    mm = sum(int(f(r.get("mismatched")) or 0) for r in ok_rows)
    steady = [r for r in ok_rows if is_steady(r)]
    steady_ot = [r for r in steady if f(r.get("on_time_min_pct")) is not None]
    ot_fail = [r for r in steady_ot if f(r["on_time_min_pct"]) < 99.9]
    worst_ot = min(steady_ot, key=lambda r: f(r["on_time_min_pct"])) if steady_ot else None
    l_rows = [r for r in steady if f(r.get("L_bound_ms")) is not None]
    l_fail = [r for r in l_rows if f(r["L_p50_ms"]) > f(r["L_bound_ms"])]
    worst_l = max(l_rows, key=lambda r: f(r["L_p50_ms"]) / f(r["L_bound_ms"])) if l_rows else None
    clk_rows = [r for r in steady if int(float(r["delay_ms"])) == 50 and
                int(float(r["jitter_ms"])) == 10 and r["dist"] == "uniform" and
                f(r.get("clock_err_p99_us")) is not None]
    clk_fail = [r for r in clk_rows if f(r["clock_err_p99_us"]) > 1000]
    part_rows = [r for r in ok_rows if r["fault"] in ("partition", "rejoin")]
    part_fail = [r for r in part_rows if f(r.get("recovery_s")) is None or
                 f(r["recovery_s"]) > 2.0 or r.get("coherent") != 1]
    acc = []
    acc.append(["coherence in every run (partitions and crashes included)", "100 %",
                "%d of %d runs coherent; %d events out of order, %d missing, %d keys with "
                "different contents" % (len(coherent), len(ok_rows), mis, miss, mm),
                verdict(len(coherent) == len(ok_rows) and ok_rows)])
    acc.append(["on time at every member, steady conditions (no loss, no fault)", "≥ 99.9 %",
                "%d of %d runs; worst member %s %% (%s)" % (
                    len(steady_ot) - len(ot_fail), len(steady_ot),
                    worst_ot["on_time_min_pct"] if worst_ot else "–",
                    worst_ot["run"] if worst_ot else "–"),
                verdict(steady_ot and not ot_fail)])
    acc.append(["L chosen, steady", "≤ 1.2 × (largest one-way delay, p99.9) + 5 ms",
                "%d of %d runs; furthest over: L %s ms against %s ms (%s)" % (
                    len(l_rows) - len(l_fail), len(l_rows),
                    worst_l["L_p50_ms"] if worst_l else "–",
                    worst_l["L_bound_ms"] if worst_l else "–", worst_l["run"] if worst_l else "–"),
                verdict(l_rows and not l_fail)])
    acc.append(["clock offset error p99 at 50 ± 10 ms symmetric jitter", "≤ 1 ms",
                ", ".join("%s µs (%s)" % (n(r["clock_err_p99_us"], 0), r["run"])
                          for r in clk_rows) or "–",
                verdict(clk_rows and not clk_fail)])
    acc.append(["whole again after a 3 s partition heals (every member delivering, coherent)",
                "≤ 2 s", ", ".join("%s s (%s)" % (n(r.get("recovery_s"), 2), r["run"])
                                   for r in part_rows) or "–",
                verdict(part_rows and not part_fail)])
    w(table(["criterion", "target", "measured", ""], acc))
    w("")
    w("On time, L and the clock are judged on the steady runs: no loss and no fault, any delay, "
      "jitter and distribution. The L criterion needs each event's submission and deliveries, "
      "which only `tutti member` records (`--timing`); the scsynth runs count toward coherence, "
      "on time (the plugin's own count, at its 5 ms lead), the clock and recovery.")
    w("")
    short = shortfalls(rows, ot_fail, l_fail, clk_fail, part_fail, details, info)
    if short:
        w("### Where it fell short, and why")
        w("")
        for s in short:
            w("- " + s)
        w("")
    found = findings(ok_rows, details, info)
    if found:
        w("## What the numbers say")
        w("")
        for x in found:
            w("- " + x)
        w("")
    if err_rows:
        w("Runs that did not complete: " + "; ".join(
            "%s (%s)" % (r["run"], r["error"]) for r in err_rows) + ".")
        w("")

    # ------------------------------------------------------------ method
    w("## How it was measured")
    w("")
    w("- **Sessions.** Every run starts a hub (`tutti hub`%s), one relay per member "
      "(`tutti netsim`, seeded differently, the same settings both ways; the relays of 8- and "
      "16-member sessions sleep without spinning, `--spin-max 0`, to leave the two cores to "
      "the members: they are then 0.1–2 ms late at times, which the measured delays include) "
      "and the members%s. `tutti member` processes each play %g events a second for %g s%s, every "
      "event asked for \"now\" (`--lead-max 0`), so the horizon rule stamps each one exactly "
      "L ahead: the worst case for timeliness, and what a musician playing live does. The "
      "scsynth runs play examples/trio (drums, bass, chords at 120 bpm), one part per server, "
      "each client sending its bundles %g s ahead through its server's proxy port." % (
          " `--auto-horizon`" if mode_name == "auto" else "",
          "; the hub, relays and members run at real-time priority (`--realtime`, SCHED_FIFO "
          "10, below JACK's and scsynth's audio threads), as a stage machine would, so that 33 "
          "processes on two cores do not wait a scheduler period (up to ~100 ms) to run"
          if not getattr(a, "no_realtime", False) else
          "; every process at normal priority (`--no-realtime`)",
          a.rate, a.seconds, longer_txt, a.client_lead))
    rehearsed = [r for r in rows if r.get("rehearsal_L_ms")]
    if rehearsed:
        w("- **Rehearsal.** Every run without a fault (%d of these) is rehearsed first, as "
          "musicians would before a gig: the same condition for %g s (at most the run's own "
          "length) with other draws of the relays (their seeds + %d), its hub with "
          "`--rehearsal FILE`. The run's hub then starts from the L the rehearsal called for "
          "(its automatic horizon's target at its end, `rehearsal_L_ms`, after "
          "`rehearsal_s` of measuring) and does not lower L below it until the run has "
          "measured as long; raising is as usual. The runs with a partition or a crash start "
          "cold, at %g ms. Only the runs themselves are measured." % (
              len(rehearsed), a.rehearse, a.rehearsal_seed, a.auto_start))
    w("- **Coherence.** Each member's journal (`--journal`; the plugin's `TUTTI_JOURNAL`) is "
      "split into incarnations (a member the hub removed and that joined again is a new "
      "incarnation; `tutti member --timing` marks them) and compared with the union of every "
      "journal: *out of order* counts events whose key is not above every key delivered "
      "before them in that incarnation (duplicates included), *missing* counts events of the "
      "union inside the key range the incarnation covers that it did not deliver, "
      "*different contents* counts keys delivered with different kinds or payloads anywhere. "
      "`tutti verify` also compares the journals (a torn last line of a crashed process is "
      "left out). A run is coherent when all three counts are 0, `tutti verify` agrees and the "
      "hub saw no divergence report.")
    w("- **On time.** An event is on time at a member when it is delivered no later than its "
      "session time minus a lead of %g ms, judged by that member's own estimate of session "
      "time at delivery (the clock it would play by). The share is per member; the figure is "
      "the worst member's. The same at a 5 ms lead (what the plugin asks of scsynth) is in "
      "`on_time5_min_pct`. The scsynth runs use the plugin's own count (its lead is 5 ms), "
      "and scsynth's `late` lines are counted separately." % a.lead)
    w("- **Lateness** = delivery time − (event time − lead), member's clock; negative is time "
      "to spare. Pooled over all members' deliveries.")
    w("- **Warm-up.** Events submitted in the first %g s of playing are left out of the timing "
      "figures (on time, lateness, delays, L, clock): the clock filter locks and the automatic "
      "horizon makes its first raise there. How many deliveries were late in that window is "
      "in `warmup_late`; coherence covers every event." % a.warmup)
    w("- **Delay and the L needed.** For each event, the time from its submission at its "
      "origin to its delivery at the slowest member, both on the members' own clocks: the "
      "lead the event needed. The *largest one-way delay* of the L criterion is the p99.9 of "
      "that over the run's events (member → hub → member, including the wait for the "
      "hub's close, which members deliver against); *L needed* is its maximum plus the lead: the smallest L at which "
      "every measured event would have been on time at every member (delivery delays do not "
      "depend on L, except through the heartbeat, L/10 within 5–20 ms). *L chosen* is the "
      "lead each event was actually stamped with (stamped time − its origin's clock at "
      "submission), median and maximum over the run.")
    w("- **Clock error.** Every `tutti member` writes its estimate of session time every 20 ms "
      "with the monotonic time it was read at. All processes share this machine's clocks and "
      "the hub's session clock is its wall clock (`session_epoch_ns` in its JSON), so the "
      "true session time at that instant is known: error = estimate − truth, taken once the "
      "clock is locked and after the warm-up. The scsynth runs ask each plugin for its status "
      "every 100 ms (`clock_offset_ms` is its estimated offset minus the true one).")
    w("- **Recovery after a partition.** The relay of one member cuts its link both ways for "
      "%g s, %g s into playing; its log gives the start and end. Recovery is the time from the "
      "end until every member delivers again (the first delivery after the end, at each "
      "member, the latest of them), and the session stays coherent. *On time again* is the "
      "time to each member's last late delivery after the end. Two variants: `partition` — "
      "the hub keeps the member's place (`--suspect 10000`) while the others play on (the "
      "hub closes session time on its own schedule; what the member sent too late for the "
      "close is moved); `rejoin` — `--suspect 1000` removes it after 1 s, and the member joins again as a new incarnation "
      "(`tutti member --rejoin`) once its link is back. The scsynth runs' recovery comes "
      "from the status polls (100 ms apart). The partitioned TCP connection itself would "
      "move again only at its first retransmission after the end (exponential backoff: "
      "1.7-2 s later on these paths, as measured before); the member gives it up after 600 ms of silence and "
      "dials again, and the relay lets that connection's handshake through at its next SYN "
      "retry, so most runs resume on the new connection." % (a.partition, a.fault_at))
    w("- **Crash.** One member is killed (SIGKILL) %g s into playing; the others play on while "
      "the hub keeps its place for its suspect time (default 8 s) and then removes it. Recovery is the time from the kill until every survivor delivers "
      "again: for `tutti member`, the end of the first pause in its deliveries after the kill "
      "longer than 250 ms (or 1.5 times the longest pause of the 5 s before); for scsynth, "
      "whose parts rest, the first status poll after the hub removed the crashed member (its "
      "log) that shows new deliveries." % a.fault_at)
    w("")

    # ------------------------------------------------------------ results
    w("## Results")
    w("")
    for png, cap in (("ontime.png", "On time at the worst member over the delay sweep."),
                     ("horizon.png", "L chosen against L needed and the acceptance bound."),
                     ("lateness.png", "Lateness distributions of the 8-member steady runs."),):
        if png in pngs:
            w("![%s](%s/%s)" % (cap, rel, png))
            w("")
    w("### Steady networks")
    w("")
    w(steady_table([r for r in ok_rows if is_steady(r) and r["kind"] == "member"]))
    w("")
    w("Delays and L in ms; *delay* is submission → delivery at the slowest member (p99.9, max); "
      "*L chosen* is the median (maximum, and L when playing ended) lead events were stamped with; *bound* is "
      "1.2 × delay p99.9 + 5 ms; clock is |error| p99. Load: the machine's 1-minute load "
      "average when the run began (2 cores).")
    w("")
    for png, cap in (("clock.png", "Clock error, jitter sweep and delay sweep."),
                     ("clock-cdf.png", "Clock error distributions (steady runs).")):
        if png in pngs:
            w("![%s](%s/%s)" % (cap, rel, png))
            w("")
    lossy = [r for r in ok_rows if r["fault"] == "none" and f(r["loss_pct"]) and
             r["kind"] == "member"]
    if lossy:
        w("### Loss")
        w("")
        w("Loss in the relays is TCP's: a lost segment is sent again after about 1.25 round "
          "trips (SACK) or a retransmission timeout, and everything behind it on that "
          "connection waits (docs/netsim.md). Not a steady condition: the criteria do not "
          "apply, the figures show what loss costs.")
        w("")
        w(steady_table(lossy))
        w("")
        for png in ("loss.png", "lateness-loss.png"):
            if png in pngs:
                w("![%s](%s/%s)" % (png, rel, png))
                w("")
    faults = [r for r in ok_rows if r["fault"] != "none"]
    if faults:
        w("### Partitions and crashes")
        w("")
        w(fault_table(faults, details))
        w("")
        w("*Others on time*: the worst of the members other than the faulty one (the hub "
          "closes session time on its own schedule, so no one waits for a silent member); "
          "*faulty member*: the partitioned one's own deliveries (– for a crash); *moved*: "
          "events that reached the hub after their time had closed and were played at the "
          "first open instant. *Recovery*: partition end (or kill) → every member delivering "
          "again. *On time again*: → the last late delivery. L: before the fault → the most "
          "after it → at the end of the run (ms). *Rejoined*: incarnations of the "
          "partitioned member.")
        w("")
        for png in sorted(p for p in pngs if p.startswith("timeline-")):
            w("![%s](%s/%s)" % (png[9:-4], rel, png))
            w("")
    sc = [r for r in ok_rows if r["kind"] == "scsynth"]
    if sc:
        w("### Real scsynth members")
        w("")
        w(scsynth_table(sc))
        w("")
        w("*On time*: the plugin's count (delivered no later than 5 ms before the event's time, "
          "by its clock) after the warm-up, worst server; *scsynth late*: bundles scsynth itself "
          "reported late, on all three servers over the whole run (its log has no times, so the "
          "warm-up and the clients' set-up are included); *clients ok*: clients that got every reply they expected with the "
          "ids they used (a crashed server's client cannot).")
        w("")

    # ------------------------------------------------------------ caveats
    w("## Caveats")
    w("")
    zero = {int(float(r["members"])): r for r in rows if r["kind"] == "member" and
            is_steady(r) and f(r["delay_ms"]) == 0 and f(r.get("delay_p999_ms")) is not None}
    zs = ""
    if zero:
        zs = (" With no modelled delay at all, the p99.9 of submission → delivery at the "
              "slowest member was %s: that is the machine (and the hub's work growing with more "
              "origins), not the network." % ", ".join(
                  "%s ms with %d members" % (n(zero[k]["delay_p999_ms"], 1), k)
                  for k in sorted(zero)))
    w("- One virtual machine with %s cores: the hub, every relay, every member (and for the "
      "scsynth runs JACK and three servers) share them. The delays the members see are the "
      "relays' modelled delays plus scheduling delays, which grow with the session's size.%s "
      "The load average column says how busy the machine was (other work shared it during "
      "some runs)." % (info.get("cpus"), zs))
    w("- Loopback only: the relays model delay, jitter, loss and partitions of a TCP path "
      "(docs/netsim.md), including TCP's retransmission backoff after a partition; the runs "
      "use the same settings both ways, and the model has no congestion control.")
    w("- The true clock is this machine's: every process reads the same CLOCK_MONOTONIC and "
      "CLOCK_REALTIME, so the members' clocks have no real offset or drift to find. The "
      "clock error measured is what the filter makes of delay, jitter and scheduling, not of "
      "real oscillators.")
    if rehearsed:
        w("- The runs without a fault start from a rehearsal over the same condition (other "
          "draws of the same relays' models): their on-time and L figures are those of a "
          "session that has had a sound check. A cold start (`--rehearse 0`) learns L in its "
          "first seconds, and over the pareto queue a burst larger than any seen before can "
          "come then (docs/design.md, section 2).")
    w("- Runs are short (%g s of playing%s, %g s warm-up left out of the timing figures): "
      "p99.9 of a run's delays rests on a few events in the 3-member runs, and an automatic "
      "horizon that lowers L slowly may not have finished lowering it." %
      (a.seconds, "".join(", the pareto queue's %g s" % x for x in longer), a.warmup))
    w("- Each condition ran once, with one set of seeds (`--seed` varies them all), except "
      "the pareto queue, which ran with five series of its own (`-s1` … `-s4`): its bursts "
      "are rare and large, and one series decides little. It also plays longer: a member "
      "hears about 130 events a second, so in 15 s 99.9 % on time allows 2 late events, "
      "and one burst beyond L decides the line.")
    w("")
    w("## Files")
    w("")
    w("- `%s/runs.csv`, `%s/members.csv`: every figure above, per run and per member." % (rel, rel))
    w("- `%s/lateness_cdf.csv`, `%s/clock_cdf.csv`: the distributions (quantiles per run); "
      "`%s/timeline.csv`: deliveries per 100 ms around each fault." % (rel, rel, rel))
    w("- `%s/*.png`: the plots (gnuplot scripts in `scripts/eval/`)." % rel)
    w("- Raw logs, journals and timing files of the last run of each condition stay in the "
      "work folder (`--work`, default `BUILD/eval-work`).")
    w("")
    with open(path, "w") as fh:
        fh.write("\n".join(L))


def steady_table(rs):
    rs = sorted(rs, key=lambda r: (int(r["members"]), f(r["loss_pct"]), f(r["delay_ms"]),
                                   f(r["jitter_ms"]), r["dist"]))
    out = []
    for r in rs:
        out.append([r["run"], r["members"], cond(r), n(r.get("on_time_min_pct"), 2),
                    n(r.get("on_time5_min_pct"), 2),
                    "%s / %s" % (n(r.get("lateness_p99_ms"), 1), n(r.get("lateness_max_ms"), 1)),
                    "%s / %s" % (n(r.get("delay_p999_ms"), 1), n(r.get("delay_max_ms"), 1)),
                    "%s (%s, end %s)" % (n(r.get("L_p50_ms"), 1), n(r.get("L_max_ms"), 1),
                                         n(r.get("L_end_ms"), 0)),
                    n(r.get("L_min_ms"), 1), n(r.get("L_bound_ms"), 1),
                    n(r.get("clock_err_p99_us"), 0), r.get("coherent"),
                    n(r.get("load_before"), 1)])
    return table(["run", "members", "network", "on time %", "at 5 ms lead %",
                  "lateness p99 / max", "delay p99.9 / max", "L chosen", "L needed", "bound",
                  "clock µs", "coherent", "load"], out)


def fault_table(rs, details):
    out = []
    for r in sorted(rs, key=lambda r: (r["fault"], r["kind"], int(r["members"]))):
        m = details.get(r["run"]) or {}
        fm = None
        incs = "–"
        if r["kind"] == "member" and m.get("members"):
            last = sorted(m["members"])[-1]
            incs = str(m["members"][last].get("incarnations"))
        Ls = "%s → %s → %s" % (n(m.get("L_before_fault_ms"), 0), n(m.get("L_after_fault_max_ms"), 0),
                              n(m.get("L_end_ms"), 0)) if m.get("L_before_fault_ms") else \
            n(r.get("L_p50_ms"), 0)
        out.append([r["run"], r["kind"], r["members"], cond(r),
                    {"partition": "partition (held)", "rejoin": "partition (removed, rejoins)",
                     "crash": "crash"}[r["fault"]],
                    n(r.get("on_time_others_min_pct"), 3) or "?",
                    n(r.get("on_time_faulty_pct"), 3) or "–", r.get("moved") or "0",
                    n(r.get("recovery_s"), 2), n(r.get("ontime_again_s"), 2), Ls,
                    incs if r["fault"] == "rejoin" else "–", r.get("coherent"),
                    "%s / %s" % (r.get("misordered"), r.get("missing"))])
    return table(["run", "kind", "members", "network", "fault", "others on time % (worst)",
                  "faulty member on time %", "moved", "recovery s", "on time again s",
                  "L", "rejoined", "coherent", "out of order / missing"], out)


def scsynth_table(rs):
    out = []
    order = {"none": 0, "partition": 1, "rejoin": 2, "crash": 3}
    for r in sorted(rs, key=lambda r: (order.get(r["fault"], 9), f(r["loss_pct"]),
                                       f(r["delay_ms"]))):
        out.append([r["run"], cond(r), r["fault"], n(r.get("on_time_min_pct"), 2),
                    r.get("scsynth_late"), r.get("failures"), r.get("members_ok"),
                    n(r.get("L_p50_ms"), 1), n(r.get("clock_err_p99_us"), 0),
                    n(r.get("recovery_s"), 2), r.get("coherent")])
    return table(["run", "network", "fault", "on time %", "scsynth late", "FAILURE",
                  "clients ok", "L ms", "clock p99 µs", "recovery s", "coherent"], out)


def shortfalls(rows, ot_fail, l_fail, clk_fail, part_fail, details, info):
    """One sentence per failed criterion, with the figures that explain it."""
    out = []
    cpus = info.get("cpus") or 2
    for r in ot_fail:
        m = details.get(r["run"]) or {}
        load = f(r.get("load_before"))
        why = []
        if f(r.get("L_max_ms")) and f(r.get("L_p50_ms")) and \
                f(r["L_max_ms"]) > 1.1 * f(r["L_p50_ms"]):
            why.append("the hub raised L during the run (median %s ms, up to %s ms): events "
                       "stamped before a raise met delays above the L of their time" %
                       (r["L_p50_ms"], r["L_max_ms"]))
        if f(r.get("L_min_ms")) and f(r.get("L_p50_ms")) and f(r["L_min_ms"]) > f(r["L_p50_ms"]):
            why.append("the longest delay (%s ms) exceeded the median L (%s ms)" %
                       (r["delay_max_ms"], r["L_p50_ms"]))
        if load is not None and load > cpus:
            why.append("the load average was %.1f on %d cores when it began" % (load, cpus))
        if f(r.get("late_from_s")) is not None:
            why.append("the late events were submitted %s–%s s into playing (the warm-up "
                       "left out ends at %g s)" % (n(r["late_from_s"], 1), n(r["late_to_s"], 1),
                                                   m.get("warmup_s", 3)))
        worst = None
        for p in (m.get("members") or {}).values():
            if p.get("delivered") and not p.get("crashed"):
                late = p["delivered"] - p["on_time"]
                share = p["on_time"] / p["delivered"]
                if worst is None or share < worst[0]:
                    worst = (share, late, p["delivered"])
        count = " — %d late of %d" % (worst[1], worst[2]) if worst else ""
        detail = ("lateness p99 %s ms, max %s ms" % (r["lateness_p99_ms"], r["lateness_max_ms"])
                  if r.get("lateness_max_ms") else "the plugin's count at its 5 ms lead")
        out.append("On time: %s — worst member %s %%%s (%s)%s." % (
            r["run"], r["on_time_min_pct"], count, detail, "; " + "; ".join(why) if why else ""))
    if any(r["kind"] == "member" for r in ot_fail):
        out.append("Why events came late under steady conditions: the hub's target is the "
                   "largest L any member measured it needed over the last ~13 s (its recent "
                   "level plus the largest rise above it, at most the largest delay seen, "
                   "carried further when those rises have a heavy tail), plus a twelfth "
                   "and room: 3 ms or that member's carry, whichever is more; it is raised at once, but only after a "
                   "member has seen the larger need, so a delay of a size beyond that room (a "
                   "stall of this loaded two-core machine's scheduler, running every member, "
                   "relay and the hub; a pareto tail) makes the events already stamped with "
                   "the smaller L late. The late deliveries were late by %s." %
                   ", ".join("%s ms at most (%s)" % (r["lateness_max_ms"], r["run"])
                             for r in ot_fail if r["kind"] == "member"))
    for r in l_fail:
        extra = ""
        if f(r.get("L_peak_ms")) is not None:
            extra = ("; L peaked at %s ms %s s into playing and was %s ms when playing ended" %
                     (n(r["L_peak_ms"], 0), n(r["L_peak_at_s"], 1), n(r.get("L_end_ms"), 0)))
        out.append("L: %s — chose %s ms where 1.2 × %s + 5 = %s ms would do (needed: %s ms)%s." %
                   (r["run"], r["L_p50_ms"], r["delay_p999_ms"], r["L_bound_ms"], r["L_min_ms"],
                    extra))
    if l_fail:
        out.append("Why L stayed high: the hub raises L at once when its target rises, "
                   "and lowers it (not within 3 s of a raise, at most every second) by three "
                   "quarters of the distance to the target. The target is the largest L any "
                   "member's deliveries needed (L + lateness, the median of its last 32 ping "
                   "intervals plus the largest excess over that level in the last 128, carried "
                   "ahead by the tail of the excesses, stalls left out) plus a twelfth and "
                   "room (3 ms or that member's carry, whichever is more): a slow moment of the machine "
                   "(a scheduling stall of a loaded two-core machine) is remembered for about "
                   "13 s, longer than part of a 15 s run.")
    for r in clk_fail:
        m = details.get(r["run"]) or {}
        signs = []
        for p in (m.get("members") or {}).values():
            e = p.get("clock_err") or []
            if e:
                e = sorted(e)
                signs.append(e[len(e) // 2])
        bias = ""
        if signs:
            med = sorted(signs)[len(signs) // 2]
            bias = ("; the members' median error is %+.0f µs — a bias more than noise: the "
                    "estimate runs %s the truth, which is what a hub → member direction slower "
                    "on average than the other looks like to a two-way exchange (see *What the "
                    "numbers say*)" % (med / 1e3, "behind" if med < 0 else "ahead of"))
        out.append("Clock: %s — p99 %s µs, p50 %s µs, %s members, load %s%s." % (
            r["run"], r["clock_err_p99_us"], r["clock_err_p50_us"], r["members"],
            r.get("load_before"), bias))
    for r in part_fail:
        m = details.get(r["run"]) or {}
        why = ""
        if f(r.get("recovery_s")) is not None:
            why = ("; a TCP connection moves again at its first retransmission after the "
                   "partition ends, not at its end (exponential backoff, docs/netsim.md), so "
                   "most of this is the transport's wait")
        out.append("Partition: %s — whole again after %s s%s%s." % (
            r["run"], r.get("recovery_s") or "–",
            "" if r.get("coherent") == 1 else ", NOT coherent", why))
    return out


def details_warmup(details):
    for m in details.values():
        if m and m.get("warmup_s") is not None:
            return m["warmup_s"]
    return 3


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def findings(rows, details, info):
    """Observations the data supports, each with its figures."""
    out = []
    # coherence under every fault
    faults = [r for r in rows if r["fault"] != "none" or f(r["loss_pct"])]
    if faults:
        good = [r for r in faults if r.get("coherent") == 1]
        out.append("**Coherence held under every impairment tried**: %d of %d runs with loss, "
                   "partitions or crashes were coherent (the others: %s)." % (
                       len(good), len(faults),
                       ", ".join(r["run"] for r in faults if r.get("coherent") != 1) or "none"))
    # L against what was needed, steady member runs
    st = [r for r in rows if r["fault"] == "none" and not f(r["loss_pct"]) and
          f(r.get("L_min_ms")) and f(r.get("L_p50_ms"))]
    if st:
        ratios = sorted(f(r["L_p50_ms"]) / f(r["L_min_ms"]) for r in st)
        over = [r for r in st if f(r["L_p50_ms"]) < f(r["L_min_ms"])]
        out.append("**The automatic horizon against what was needed** (steady `tutti member` "
                   "runs): the median L chosen was %.2f to %.2f times the L needed (median "
                   "%.2f)%s." % (
                       ratios[0], ratios[-1], median(ratios),
                       "; in %d run(s) it stayed below it for part of the run, which is when "
                       "events came late: %s" % (len(over), ", ".join(
                           "%s (L %s, needed %s ms)" % (r["run"], r["L_p50_ms"], r["L_min_ms"])
                           for r in over)) if over else ""))
    # the session's size and the machine
    by_size = {}
    for r in rows:
        if r["kind"] == "member" and r["fault"] == "none" and not f(r["loss_pct"]) and \
                r["dist"] == "uniform" and int(float(r["delay_ms"])) == 50 and \
                int(float(r["jitter_ms"])) == 10 and f(r.get("delay_p50_ms")):
            by_size[int(float(r["members"]))] = r
    if len(by_size) >= 2:
        out.append("**Size costs delay**: at 50 ± 10 ms per link (an event's trip member → "
                   "hub → member is 100 ms plus up to ±20 ms of jitter, plus up to one "
                   "heartbeat), the median submission-to-delivery time at the slowest member "
                   "was %s. Part of it is the hub's close, sent every heartbeat, which a "
                   "member waits for before it delivers; part the relays of the "
                   "larger sessions, which sleep instead of spinning; part this machine's "
                   "scheduling, every member, relay and the hub on two cores." % ", ".join(
                       "%s ms with %d members" % (by_size[k]["delay_p50_ms"], k)
                       for k in sorted(by_size)))
    # clock bias
    bias = []
    for r in rows:
        m = details.get(r["run"]) or {}
        if r["kind"] != "member" or r["fault"] != "none" or f(r["loss_pct"]):
            continue
        errs = [median(p.get("clock_err") or []) for p in (m.get("members") or {}).values()]
        errs = [e for e in errs if e is not None]
        if errs:
            bias.append((r, median(errs) / 1e3))
    if bias:
        neg = [b for b in bias if b[1] < 0]
        worst = max(bias, key=lambda b: abs(b[1]))
        at50 = sorted((b for b in bias if int(float(b[0]["delay_ms"])) == 50),
                      key=lambda b: (b[0]["dist"], int(float(b[0]["members"])),
                                     f(b[0]["jitter_ms"])))
        out.append("**The clock error is mostly a bias, and it follows the jitter**: in %d of %d "
                   "steady `tutti member` runs the members' median error (estimate − truth) was "
                   "negative — their clocks ran behind the hub's — the largest %+.0f µs (%s). At "
                   "50 ms one-way the median error was %s. A two-way exchange cannot tell a "
                   "constant offset from a path that is slower one way. With the relays' "
                   "independent jitter model (`--jitter-model independent`) the hub → member "
                   "direction is slower on average: it carries every member's events, each TCP "
                   "segment draws its own jitter and then waits for the segments before it, so "
                   "the busier direction waits for the largest of many draws (docs/netsim.md "
                   "measures it: about -1.2 ms of bias at 50 ± 10 ms with 8 members, against "
                   "-0.06 ms with the queue model, the default, whose delay drifts with time "
                   "and is the same for a busy and a quiet direction)." % (
                       len(neg), len(bias), worst[1], worst[0]["run"],
                       ", ".join("%+.0f µs (%s members, ± %s ms %s)" % (
                           b[1], b[0]["members"], int(float(b[0]["jitter_ms"])), b[0]["dist"])
                           for b in at50)))
    # the horizon after a partition
    parts = [r for r in rows if r["fault"] in ("partition", "rejoin")]
    jumps = []
    for r in parts:
        m = details.get(r["run"]) or {}
        if m.get("L_before_fault_ms") and m.get("L_after_fault_max_ms"):
            jumps.append((r, m))
    if jumps:
        import math
        steps = max(math.ceil(math.log(m["L_before_fault_ms"] / m["L_after_fault_max_ms"]) /
                              math.log(0.9)) for r, m in jumps)
        jumped = any(m["L_after_fault_max_ms"] > 2 * m["L_before_fault_ms"] for r, m in jumps)
        if not jumped:
            out.append("**A partition leaves the automatic horizon where it was**: %s. The "
                       "deliveries that waited out the partition (and TCP's backoff after it) "
                       "are stalls, far above the level of the members' recent needs, and are "
                       "left out of what they report, as are round trips that spanned the cut." % (
                           "; ".join("%s: %.0f ms before, %.0f ms after, %.0f ms at the end" % (
                               r["run"], m["L_before_fault_ms"], m["L_after_fault_max_ms"],
                               m.get("L_end_ms") or 0) for r, m in jumps)))
        else:
            out.append("**After a partition the automatic horizon jumps to seconds**: %s. The "
                       "deliveries (or round trips) that waited out the partition and TCP's "
                       "backoff were taken for the paths' delay, so the target was several "
                       "seconds; the hub then lowers L step by step — about %d steps of a tenth at "
                       "the slowest, %d s — back to the L before the partition. The session is "
                       "whole and coherent again within the times above, but every event is then "
                       "stamped L ahead." % (
                       "; ".join("%s: %.0f ms before, %.0f ms after, %.0f ms at the end" % (
                           r["run"], m["L_before_fault_ms"], m["L_after_fault_max_ms"],
                           m.get("L_end_ms") or 0) for r, m in jumps), steps, 2 * steps))
    five = [r for r in rows if r["kind"] == "member" and is_steady(r) and
            f(r.get("on_time_min_pct")) is not None and f(r.get("on_time5_min_pct")) is not None]
    if five:
        drop = [r for r in five if f(r["on_time5_min_pct"]) < 99.9]
        out.append("**The horizon leaves no room for a synth's lead**: judged with a 5 ms lead "
                   "(what the plugin asks for scsynth's sake), %d of %d steady `tutti member` "
                   "runs fall below 99.9 %% at the worst member%s. The hub's target is what "
                   "the members measured they needed at their own lead (0 ms here) with a "
                   "twelfth and 3 ms (or a heavy tail's carry) to spare; a member with a larger lead (the plugin's 5 ms) "
                   "measures and reports its need with that lead." % (
                       len(drop), len(five),
                       " (%s)" % ", ".join("%s %% in %s" % (r["on_time5_min_pct"], r["run"])
                                          for r in drop) if drop else ""))
    warm = [r for r in rows if r["kind"] == "member" and r["fault"] == "none" and
            not f(r["loss_pct"]) and f(r.get("warmup_late")) is not None]
    if warm:
        late = sum(int(f(r["warmup_late"])) for r in warm)
        worst = max(warm, key=lambda r: f(r["warmup_late"]))
        if all(r.get("rehearsal_L_ms") for r in warm):
            out.append("**The first seconds**: the figures leave out each run's first %s s of "
                       "playing, while the clocks lock. Started from their rehearsals' L, the "
                       "steady `tutti member` runs had %s in that window." % (
                           n(details_warmup(details), 0),
                           "no late delivery" if not late else
                           "%d late deliveries in all (the most, %s, in %s)" % (
                               late, worst["warmup_late"], worst["run"])))
        else:
            out.append("**The first seconds**: the figures leave out each run's first %s s of "
                       "playing, while the clocks lock and L rises from its starting 20 ms to "
                       "what the paths need (within about a second of the members joining). "
                       "In that window the steady `tutti member` runs had %d late deliveries "
                       "in all (the most, %s, in %s): a session should start its automatic "
                       "horizon from a rehearsal or a guess above the paths." % (
                           n(details_warmup(details), 0), late, worst["warmup_late"],
                           worst["run"]))
    faults = [r for r in rows if r["fault"] != "none" and
              f(r.get("on_time_others_min_pct")) is not None]
    if faults:
        out.append("**A fault costs the others nothing**: with the faulty member left out, "
                   "the worst other member was on time for %s of its events (the hub closes "
                   "session time on its own schedule and keeps a silent member's place; what "
                   "the faulty member sent too late for its close was moved, %s events in "
                   "all)." % (", ".join("%s %% (%s)" % (n(r["on_time_others_min_pct"], 3),
                                                         r["run"]) for r in faults),
                             sum(int(r.get("moved") or 0) for r in faults)))
    lossy = [r for r in rows if r["fault"] == "none" and f(r["loss_pct"]) and
             f(r.get("on_time_min_pct")) is not None]
    if lossy:
        out.append("**Loss**: on time at the worst member %s. Each lost segment holds its "
                   "connection back by about 1.25 round trips (longer when the retransmission "
                   "is lost too); L follows the members' measured need, so the share depends on "
                   "how fast L caught up." % ", ".join(
                       "%s %% (%s)" % (r["on_time_min_pct"], r["run"]) for r in
                       sorted(lossy, key=lambda r: (int(float(r["members"])), f(r["loss_pct"])))))
    return out
