#!/usr/bin/env python3
"""Turns the raw wrk outputs and probes that bench/run.sh saved into BENCHMARKS.md.

Reads RUN_DIR/meta.env (KEY=value lines written by run.sh), RUN_DIR/raw/*.txt (one wrk
output per timed run, named SCENARIO__cCONNS__TARGET__rROUND.txt, with .cpu and, for the
gateway, .health-before.json / .health-after.json beside it) and RUN_DIR/verify/*.txt.
Writes the markdown to --out and prints the result tables to stdout.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from collections import defaultdict

TARGETS = ["direct", "nginx", "haproxy", "gateway", "gwplain", "gwnocache", "static"]
LABELS = {"gwnocache": "gateway, volatile cache off", "gwplain": "gateway, plain release build",
          "static": "nginx `return 200` (no node: load-generator ceiling)"}
GATEWAYS = ("gateway", "gwplain", "gwnocache")
SCENARIOS = {
    "tip": "(a) uncached tip read — `aztec_getBlockNumber`",
    "block": "(b) cached immutable read — `aztec_getBlock` `[1]` (finalized block)",
    "batch": "(c) 10-item batch of mixed reads",
    "unique": "(d) uncached, un-coalesced read — `aztec_getBlock` with a distinct future block number per request",
}
NOTES = {
    "tip": "The default gateway answers these from its 1 s volatile cache; the *volatile cache off* instance still "
           "coalesces identical in-flight requests (see its counters below). Neither row is a per-request forwarding cost: "
           "that is scenario (d).",
    "block": "Block 1 is finalized: the gateway answers from its cache, the other targets forward every request.",
    "batch": "Ten items per HTTP request (req/s counts HTTP requests). The gateway splits the batch, answers items from "
             "cache or coalesces them, and sends the rest upstream; the other targets forward the batch as one body.",
    "unique": "Each request asks for a different block number above the chain tip (the node answers `null`), so "
              "neither the gateway's cache nor its coalescing can answer it: every request is parsed, routed and "
              "forwarded. This is the gateway's pass-through cost, comparable with nginx/HAProxy forwarding.",
}
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


def parse_wrk(text):
    r = {"rps": None, "p50": None, "p99": None, "requests": None, "non2xx": 0,
         "sock": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "verify": None, "ok": False}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
        r["ok"] = True
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)\s*$", text, re.M)
        if m:
            r[key] = to_ms(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["sock"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"VERIFY responses=(\d+) http_non200=(\d+) rpc_error=(\d+) bad_body=(\d+)", text)
    if m:
        r["verify"] = dict(zip(("responses", "http_non200", "rpc_error", "bad_body"), map(int, m.groups())))
    return r


def wrk_errors(r):
    """What went wrong in a wrk run (or an aggregate of runs): failed run, non-2xx, socket errors."""
    errs = [] if r["ok"] else ["wrk run failed"]
    if r["non2xx"]:
        errs.append(f"non-2xx {r['non2xx']:,} of {r['requests'] or 0:,}")
    errs += [f"socket {k} {v:,}" for k, v in r["sock"].items() if v]
    return errs


def read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return default


def health_totals(path):
    try:
        return json.loads(read(path, "{}")).get("totals", {})
    except ValueError:
        return {}


def cmd(*argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unavailable"


def machine_facts():
    cpu = "unknown"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "unknown"
    m = re.search(r"MemTotal:\s+(\d+) kB", read("/proc/meminfo"))
    if m:
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB"
    os_name = "unknown"
    m = re.search(r'PRETTY_NAME="([^"]+)"', read("/etc/os-release"))
    if m:
        os_name = m.group(1)
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "mem": mem, "kernel": platform.release(), "os": os_name}


def fmt_rps(v):
    return "n/a" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def fmt_ratio(a, b):
    if a is None or not b:
        return "n/a"
    return f"{a / b:.2f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--strict", action="store_true", help="exit 3 when anything was flagged")
    args = ap.parse_args()
    meta = {}
    for line in read(os.path.join(args.run_dir, "meta.env")).splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k] = v
    clk = int(meta.get("CLK_TCK", "100"))

    # runs[(scenario, conns, target)] = [parsed run, ...] (one per round and slice)
    runs = defaultdict(list)
    raw_dir = os.path.join(args.run_dir, "raw")
    for name in sorted(os.listdir(raw_dir)) if os.path.isdir(raw_dir) else []:
        m = re.fullmatch(r"(\w+)__c(\d+)__(\w+)__r(\d+)(?:__s\d+)?\.txt", name)
        if not m:
            continue
        scen, conns, target, rnd = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        base = os.path.join(raw_dir, name[:-4])
        r = parse_wrk(read(base + ".txt"))
        r["round"] = rnd
        cpu = read(base + ".cpu").split()
        if len(cpu) == 4 and r["requests"]:
            proxy_ticks, node_ticks = int(cpu[1]) - int(cpu[0]), int(cpu[3]) - int(cpu[2])
            r["proxy_cpu_us"] = proxy_ticks / clk * 1e6 / r["requests"] if target != "direct" else None
            r["node_cpu_us"] = node_ticks / clk * 1e6 / r["requests"]
        if target in GATEWAYS:
            before, after = health_totals(base + ".health-before.json"), health_totals(base + ".health-after.json")
            if before and after:
                r["gw"] = {k: after.get(k, 0) - before.get(k, 0) for k in ("requests", "errors", "cache_hits", "coalesced", "retries", "rate_limited")}
        runs[(scen, conns, target)].append(r)

    def agg(key):
        return agg_runs(runs.get(key, []))

    def agg_runs(rs):
        """A target's runs (rounds and slices) summed: means of req/s, percentiles and CPU, error totals."""
        out = {"n": len(rs), "ok": bool(rs) and all(r["ok"] for r in rs)}
        for f in ("rps", "p50", "p99", "proxy_cpu_us", "node_cpu_us"):
            vals = [r.get(f) for r in rs if r.get(f) is not None]
            out[f] = statistics.mean(vals) if vals else None
            out[f + "_all"] = vals
        by_round = defaultdict(list)
        for r in rs:
            if r.get("rps") is not None:
                by_round[r.get("round", 1)].append(r["rps"])
        out["rps_rounds"] = [statistics.mean(by_round[k]) for k in sorted(by_round)]
        out["non2xx"] = sum(r["non2xx"] for r in rs)
        out["requests"] = sum(r["requests"] or 0 for r in rs)
        out["sock"] = {k: sum(r["sock"][k] for r in rs) for k in ("connect", "read", "write", "timeout")}
        gws = [r["gw"] for r in rs if "gw" in r]
        out["gw"] = {k: sum(g[k] for g in gws) for k in gws[0]} if gws else None
        return out

    conns_list = sorted({k[1] for k in runs})
    facts = machine_facts()
    flagged = []   # errors: make --strict fail
    warnings = []  # conditions that make the numbers less trustworthy
    if meta.get("DIED"):
        flagged.append(f"process(es) died during the timed runs: {meta['DIED']} — later runs were not made; "
                       "see the gateway/node logs (BENCH_KEEP=1)")
    tables = []
    for scen, title in SCENARIOS.items():
        if not any(k[0] == scen for k in runs):
            continue
        lines = [f"### {title}", ""]
        body = meta.get(f"BODY_{scen}", "")
        if body:
            lines += [f"Body: `{body}`" if len(body) < 140 else f"Body: `bench/bodies/{scen}.json` ({len(body)} bytes)", ""]
            if "%d" in body:
                lines[-2] += " (`%d` = a distinct number per request: 1,000,000,000 + wrk thread × 100,000,000 + request count)"
        if scen in NOTES:
            lines += [NOTES[scen], ""]
        lines += ["| target | conns | req/s | p99 ms | ratio vs nginx | ratio vs direct | p50 ms | proxy CPU µs/req | node CPU µs/req | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for conns in conns_list:
            base_nginx = agg((scen, conns, "nginx"))["rps"]
            base_direct = agg((scen, conns, "direct"))["rps"]
            for target in TARGETS:
                a = agg((scen, conns, target))
                if a["n"] == 0:
                    continue
                errs = wrk_errors(a)
                if a["gw"] and a["gw"]["errors"]:
                    errs.append(f"gateway error items {a['gw']['errors']:,}")
                err = "⚠ " + "; ".join(errs) if errs else "none"
                if errs:
                    flagged.append(f"{scen} c{conns} {target}: {'; '.join(errs)}")
                rps = fmt_rps(a["rps"])
                if len(a["rps_rounds"]) > 1:
                    rps += " (" + " / ".join(fmt_rps(v) for v in a["rps_rounds"]) + ")"
                cpu = "—" if a["proxy_cpu_us"] is None else f"{a['proxy_cpu_us']:.0f}"
                ncpu = "n/a" if a["node_cpu_us"] is None else f"{a['node_cpu_us']:.1f}"
                lines.append(f"| {LABELS.get(target, target)} | {conns} | {rps} | {fmt_ms(a['p99'])} | {fmt_ratio(a['rps'], base_nginx)} | "
                             f"{fmt_ratio(a['rps'], base_direct)} | {fmt_ms(a['p50'])} | {cpu} | {ncpu} | {err} |")
        gw_notes = []
        for conns, gw in ((c, t) for c in conns_list for t in GATEWAYS):
            g = agg((scen, conns, gw))["gw"]
            if g and g["requests"]:
                gw_notes.append(f"{LABELS.get(gw, gw)} c{conns}: {g['requests']:,} items, cache hits {g['cache_hits']:,} "
                                f"({100 * g['cache_hits'] / g['requests']:.1f}%), coalesced {g['coalesced']:,}, "
                                f"retries {g['retries']:,}, error items {g['errors']:,}")
        if gw_notes:
            lines += ["", "Gateway counters over its timed runs (`/health` totals, before → after): " + "; ".join(gw_notes) + "."]
        tables.append("\n".join(lines))

    # Paced runs: one offered load for every target.
    # A target's paced turns (slices) are summed like its timed ones: req/s, p50 and p99 are
    # the means over its turns, errors the totals.
    paced_turns = defaultdict(list)
    pdir = os.path.join(args.run_dir, "paced")
    for name in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
        m = re.fullmatch(r"(\w+?)__(\w+?)(?:__s\d+)?\.txt", name)
        if m:
            paced_turns[(m.group(1), m.group(2))].append(parse_wrk(read(os.path.join(pdir, name))))
    paced = {key: agg_runs(rs) for key, rs in paced_turns.items()}
    paced_lines = []
    if paced:
        paced_lines += ["| scenario | target | req/s | p50 ms | p99 ms | p99 vs nginx | errors |", "|---|---|---:|---:|---:|---:|---|"]
        for scen in SCENARIOS:
            base = paced.get((scen, "nginx"), {}).get("p99")
            for target in TARGETS:
                r = paced.get((scen, target))
                if r is None:
                    continue
                errs = wrk_errors(r)
                if errs:
                    flagged.append(f"paced {scen} {target}: {'; '.join(errs)}")
                vs = f"{r['p99'] / base:.2f}×" if r["p99"] and base else "—"
                paced_lines.append(f"| {scen} | {LABELS.get(target, target)} | {fmt_rps(r['rps'])} | {fmt_ms(r['p50'])} | "
                                   f"{fmt_ms(r['p99'])} | {vs} | {'⚠ ' + '; '.join(errs) if errs else 'none'} |")

    # Verification pass.
    verify_rows = []
    vdir = os.path.join(args.run_dir, "verify")
    for name in sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []:
        m = re.fullmatch(r"(\w+)__(\w+)\.txt", name)
        if not m:
            continue
        r = parse_wrk(read(os.path.join(vdir, name)))
        v = r["verify"]
        if v is None:
            verify_rows.append((m.group(1), m.group(2), None, r))
            flagged.append(f"verify {m.group(1)} {LABELS.get(m.group(2), m.group(2))}: no VERIFY line (wrk failed?)")
            continue
        verify_rows.append((m.group(1), m.group(2), v, r))
        if v["http_non200"] or v["rpc_error"] or v["bad_body"] or any(r["sock"].values()):
            flagged.append(f"verify {m.group(1)} {LABELS.get(m.group(2), m.group(2))}: non-200 {v['http_non200']}, JSON-RPC error {v['rpc_error']}, "
                           f"bad body {v['bad_body']} of {v['responses']} responses")
    order = {s: i for i, s in enumerate(SCENARIOS)}
    verify_rows.sort(key=lambda x: (order.get(x[0], 9), TARGETS.index(x[1]) if x[1] in TARGETS else 9))

    rss = []
    def kib(key):
        v = meta.get(key)
        return int(v) if v and v.isdigit() else None
    idle, held, after, hwm = kib("RSS_IDLE_KB"), kib("RSS_1000_KB"), kib("RSS_END_KB"), kib("HWM_END_KB")
    if idle is not None:
        rss.append(f"- Gateway idle RSS (ready, no client connections, before any load): **{idle / 1024:.1f} MiB**")
    if held is not None:
        n = int(meta.get("IDLE_OPENED", "0") or 0)
        per = f", ≈ {(held - idle) / max(n, 1):.1f} KiB per connection" if idle is not None and n else ""
        rss.append(f"- Gateway RSS with {meta.get('IDLE_TARGET', '1000')} idle keep-alive connections open "
                   f"(opened {meta.get('IDLE_OPENED', '?')}, answered {meta.get('IDLE_ANSWERED', '?')}, failed {meta.get('IDLE_FAILED', '?')}; "
                   f"still open after {meta.get('IDLE_HOLD_S', '?')} s: {meta.get('IDLE_STILL_OPEN', '?')}): "
                   f"**{held / 1024:.1f} MiB** (+{(held - (idle or held)) / 1024:.1f} MiB{per})")
        if meta.get("IDLE_FAILED", "0") not in ("0", "") or meta.get("IDLE_STILL_OPEN") != meta.get("IDLE_OPENED"):
            flagged.append(f"idle connections: opened {meta.get('IDLE_OPENED')}, failed {meta.get('IDLE_FAILED')}, "
                           f"still open {meta.get('IDLE_STILL_OPEN')}")
    if after is not None:
        rss.append(f"- Gateway RSS at the end of the run (after all load): {after / 1024:.1f} MiB; peak (VmHWM): {(hwm or 0) / 1024:.1f} MiB")
    if meta.get("GW_LOG_LINES"):
        rss.append(f"- Gateway log lines at LOG_LEVEL=warn during the run: {meta['GW_LOG_LINES']}")

    load = []
    try:
        wall, sys_t, bench_t = float(meta["LOAD_WALL_S"]), int(meta["LOAD_SYS_TICKS"]), int(meta["LOAD_BENCH_TICKS"])
        cap = wall * clk * int(facts["nproc"])
        irq_t = int(meta.get("LOAD_IRQ_TICKS", "0") or 0)
        other = max(0, sys_t - bench_t - irq_t)
        load.append(f"- During the {wall:.0f} s of timed runs the machine was {100 * sys_t / cap:.0f}% busy (of {facts['nproc']} cores): "
                    f"the bench's own processes (node, proxies, wrk) {100 * bench_t / cap:.0f}%; interrupt/softirq time "
                    f"(loopback packet processing, mostly ours, partly also counted in the processes' system time) {100 * irq_t / cap:.0f}%; "
                    f"left for everything else ≈ {100 * other / cap:.0f}% (busy − bench − softirq, at least 0).")
        if other / cap > 0.05:
            warnings.append(f"other processes used ≈ {100 * other / cap:.0f}% of the CPU during the timed runs: numbers are noisier than usual")
    except (KeyError, ValueError, ZeroDivisionError):
        pass
    if meta.get("LOADAVG_START"):
        load.append(f"- Load average before the run: {meta['LOADAVG_START']}; after the timed runs: {meta.get('LOADAVG_END', '?')}.")
    dur = meta.get("DURATION", "?")
    out = []
    out.append("# Benchmarks\n")
    out.append(f"_Generated by `bench/run.sh` ({'quick smoke run' if meta.get('QUICK') == '1' else 'full run'}) on "
               f"{meta.get('DATE', '?')}. The file is overwritten by every run; numbers are from one run on one machine._\n")
    out.append("## Summary\n")
    summ = []
    for scen in SCENARIOS:
        for conns, gw in ((c, t) for c in conns_list for t in GATEWAYS):
            g, n, d = agg((scen, conns, gw)), agg((scen, conns, "nginx")), agg((scen, conns, "direct"))
            if g["n"] and n["n"]:
                summ.append(f"- {scen} c{conns}: {LABELS.get(gw, gw)} {fmt_rps(g['rps'])} req/s (p99 {fmt_ms(g['p99'])} ms) = "
                            f"{fmt_ratio(g['rps'], n['rps'])} nginx, {fmt_ratio(g['rps'], d['rps'])} direct")
    out.append("\n".join(summ) + "\n")
    paced_summ = []
    for scen in SCENARIOS:
        g, n = paced.get((scen, "gateway")), paced.get((scen, "nginx"))
        if g and n and g["p99"] and n["p99"]:
            paced_summ.append(f"{scen} {fmt_ms(g['p99'])} vs {fmt_ms(n['p99'])} ms")
    if paced_summ:
        out.append(f"At one paced load (-c{meta.get('PACE_CONNS', '64')}, {meta.get('PACE_MS', '?')} ms between a connection's answer and its "
                   "next request), p99 gateway vs nginx: " + "; ".join(paced_summ) + ".\n")
    if flagged:
        out.append("**⚠ Errors seen in this run:**\n")
        out.append("\n".join(f"- {f}" for f in flagged) + "\n")
    else:
        out.append("No errors: every timed run had 0 non-2xx responses and 0 socket errors; the verification pass saw no JSON-RPC errors.\n")
    if warnings:
        out.append("**Caveats for this run:**\n")
        out.append("\n".join(f"- {w}" for w in warnings) + "\n")
    out.append("## Machine\n")
    out.append(f"- CPU: {facts['cpu']} — `nproc` = {facts['nproc']}\n- Memory: {facts['mem']}\n- Kernel: {facts['kernel']} ({facts['os']})\n"
               f"- Date: {meta.get('DATE', '?')}\n- Commit: {meta.get('COMMIT', 'unknown')}\n")
    out.append("The load generator (wrk, 2 threads), the simulated node, and the proxy under test all share these "
               f"{facts['nproc']} cores over loopback; nothing is pinned. Absolute numbers are therefore lower than on a "
               "dedicated box and mostly measure CPU cost per request: a proxy that burns less CPU leaves more for wrk "
               "and the node. Compare ratios within one run, not across machines.\n")
    if load:
        out.append("\n".join(load) + "\n")
    pgo = meta.get("GW_BUILD") == "pgo"
    build_label = "profile-guided release build, `scripts/build-pgo.sh`" if pgo else "plain release build, `cargo build --release`"
    out.append("## Versions\n")
    out.append("\n".join(f"- {x}" for x in (
        f"wrk: `{cmd('wrk', '-v')}`", f"nginx: `{cmd('nginx', '-v')}`", f"HAProxy: `{cmd('haproxy', '-v')}`",
        f"rustc: `{cmd('rustc', '-V')}`", f"cargo: `{cmd('cargo', '-V')}`",
        f"sentinel-proxy: `{meta.get('GW_VERSION', '?')}` ({build_label})", f"python3: `{cmd('python3', '--version')}`")) + "\n")
    out.append("## Setup\n")
    out.append(f"""- **node**: one simulated Aztec node, `{meta.get('NODE_CMD', '?')}`; it is the only backend of every target.
- **direct**: wrk → node.
- **nginx**: `{meta.get('NGINX_CMD', '?')}` with `worker_processes auto` ({facts['nproc']} workers), `upstream {{ keepalive 256; }}`, `proxy_http_version 1.1`, `proxy_set_header Connection ""`, `keepalive_requests 1000000` (client and upstream side; nginx's default of 1000 would close wrk's connections), access log off. Template: `bench/nginx.conf.tmpl`.
- **haproxy**: `{meta.get('HAPROXY_CMD', '?')}`, `mode http`, `http-reuse always`, `nbthread {meta.get('NPROC', '?')}`, no logging. Template: `bench/haproxy.cfg.tmpl`.
- **gateway**: `{meta.get('GW_CMD', '?')}` (started in an empty temp dir so no `.env` is picked up; measured once `GET /ready` answered 200). Its tokio runtime has one worker thread per core. All other settings are the defaults — including `CACHE_VOLATILE_MS=1000`, so the gateway answers tip reads (`getBlockNumber`, `isReady`, `getChainTips`) from a 1 s cache: scenario (a) is *uncached* only for direct/nginx/haproxy.
- **gateway build**: {"the profile-guided release build (`scripts/build-pgo.sh`, `make pgo`: an instrumented build trained with wrk on these four bodies and three bad requests, then rebuilt with the profile; same sources, same behaviour). **gateway, plain release build** is `cargo build --release` of the same commit, run in scenarios (c) and (d) beside it." if pgo else "the plain release build (`cargo build --release`)."}
- **nginx `return 200`**: the nginx above, second `server` answering `{{"jsonrpc":"2.0","id":1,"result":1}}` itself with no node behind it, in scenarios (a) and (b). Nothing on this machine answers faster, so its row is the load generator's ceiling, and its p99 is wrk's own tail when it saturates the cores: the saturated p99 of a target that answers from memory (the gateway in (a) and (b)) cannot be read as that target's latency below this line. The paced runs (e) measure latency at one load.
- **gateway, volatile cache off**: a second gateway process, identical except `CACHE_VOLATILE_MS=0`, run in scenario (a) only. It still coalesces identical in-flight requests (this cannot be switched off), so with one fixed body most of its requests never reach the node either; scenario (d) is the one where every gateway request is forwarded.
- Every listener is on 127.0.0.1 on a free port picked at run time.
- Timed runs: `{meta.get('WRK_CMD', '?')}` with `BENCH_BODY_FILE=bench/bodies/SCENARIO.json`; {meta.get('ROUNDS', '1')} round(s) of {dur} per target, scenario and connection count, each in {meta.get('SLICES', '1')} slice(s) of {meta.get('SLICE_DURATION', dur)}. Runs are interleaved: in each (scenario, conns) group the targets take turns slice by slice, and the order rotates from slice to slice and group to group, so no target always runs first or last and a change of this machine's speed during a group falls on every target alike. req/s, p50 and p99 are the means over a target's slices; with more than one round, req/s then shows each round's mean.
- **ratio vs nginx / vs direct** = req/s of the row ÷ req/s of nginx / direct in the same group of this run (higher is better).
- **p99** is wrk's `--latency` 99th percentile (wrk 4 is not coordinated-omission corrected: it is the latency of requests actually sent).
- **proxy CPU µs/req**: user+system CPU time of the proxy process(es) during the timed run (from `/proc/PID/stat`, all nginx workers summed) ÷ requests completed; **node CPU µs/req** likewise for the simulated node (what each target's forwarding costs the backend; near 0 when the gateway answers from cache or coalesces). Resolution is one clock tick (10 ms) per run. On this shared 2-core box these are steadier than req/s, which moves with whatever else runs.
- **errors**: wrk's `Non-2xx or 3xx responses` and `Socket errors` lines, and for the gateway the change of its `/health` error total; anything non-zero is marked ⚠.
- A separate untimed verification pass (`BENCH_VERIFY=1`, {meta.get('VERIFY_DURATION', '?')} at -c{meta.get('VERIFY_CONNS', '?')}, before the timed runs) reads every response body and counts HTTP non-200s, JSON-RPC `error` members (the gateway answers those with HTTP 200) and bodies missing their `result`s.
""")
    out.append("## Results\n")
    out.append("\n\n".join(tables) + "\n")
    if paced_lines:
        out.append("### (e) latency at one offered load (paced)\n")
        out.append("The timed runs above saturate every target, so their p99 mixes the target's own latency with queueing "
                   "in a load generator that shares the cores (a target serving twice nginx's rate keeps wrk twice as busy). "
                   f"Here every target gets the same offered load instead: `{meta.get('PACE_CMD', '?')}` — each connection "
                   f"waits {meta.get('PACE_MS', '?')} ms after every answer before its next request, so req/s is about the "
                   "same for every target and the percentiles are the time each takes to answer. After the timed runs, "
                   f"the targets take turns as there ({meta.get('SLICES', '1')} turn(s) of {meta.get('SLICE_DURATION', '?')} "
                   "each, the order rotating); req/s, p50 and p99 are the means over a target's turns. This is the table "
                   "that compares latency: at saturation the targets run at different rates (docs/perf/README.md, "
                   "rounds 6 and 7).\n")
        out.append("\n".join(paced_lines) + "\n")
    out.append("## Memory (gateway)\n")
    out.append("\n".join(rss) + "\n" if rss else "not measured\n")
    out.append("Measured with `bench/idle_conns.py`: it opens the connections one by one, sends one `aztec_getBlockNumber` on each with "
               "keep-alive, reads the answer and then holds all of them idle while `VmRSS` is read from `/proc/PID/status`.\n")
    if verify_rows:
        out.append("## Verification pass (response bodies checked)\n")
        vl = ["| scenario | target | responses | HTTP non-200 | JSON-RPC error | bad body | socket errors |", "|---|---|---:|---:|---:|---:|---|"]
        for scen, target, v, r in verify_rows:
            se = ", ".join(f"{k} {n}" for k, n in r["sock"].items() if n) or "0"
            if v is None:
                vl.append(f"| {scen} | {LABELS.get(target, target)} | ⚠ no result | | | | {se} |")
            else:
                mark = "⚠ " if v["http_non200"] or v["rpc_error"] or v["bad_body"] else ""
                vl.append(f"| {scen} | {LABELS.get(target, target)} | {v['responses']:,} | {mark}{v['http_non200']} | {v['rpc_error']} | {v['bad_body']} | {se} |")
        out.append("\n".join(vl) + "\n")
    out.append("## Reproduce\n")
    out.append("```sh\napt-get install -y wrk nginx haproxy   # once\nmake bench                               # = ./bench/run.sh (~"
               "22 min plus the builds, ~8 min of them profile-guided: two interleaved rounds)\nBENCH_ROUNDS=1 ./bench/run.sh            # one round, ~12 min\n./bench/smoke.sh                         # 3 s runs, -c64, writes to a temp file\n```\n")
    out.append("Knobs: `BENCH_DURATION` (default 10s), `BENCH_CONNS` (default \"64 512\"), `BENCH_ROUNDS` (1 or 2, default 2), "
               "`BENCH_QUICK=1` (3 s timed runs), `BENCH_SCENARIOS` (default \"tip block batch unique\"), "
               "`BENCH_IDLE_CONNS` (default 1000), `BENCH_PACE_MS` (default 5; 0 skips the paced runs), `BENCH_OUT` (default BENCHMARKS.md), `BENCH_BUILD` (pgo or release, default pgo), `BENCH_SKIP_BUILD=1`, `BENCH_KEEP=1` (keep the temp dir with raw outputs).\n")
    text = "\n".join(out)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)

    print()
    print("\n\n".join(tables))
    print()
    print("\n".join(rss))
    if flagged:
        print("\nERRORS:")
        print("\n".join(f"  - {f}" for f in flagged))
    if warnings:
        print("\nCAVEATS:")
        print("\n".join(f"  - {w}" for w in warnings))
    print(f"\nwritten: {args.out}")
    return 3 if flagged and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
