#!/usr/bin/env python3
"""Helpers of bench/descriptors.sh (loopback only).

silent   Opens --count TCP connections to --port that never send a byte and holds them until
         --release-file exists (or --hold-max seconds pass), noticing when the server closes
         each one. Several processes can share the work (one process may hold fewer
         descriptors than the run needs). Prints one JSON object:
           {"opened", "connected", "failed", "pending", "closed_soon", "closed_later",
            "held_s": [...], "still_open"}
         opened = connected when the connects were done (--connect-max), connected = by the
         end (a SYN the kernel dropped is sent again later); closed_soon = closed by the server
         within 5 s of connecting (shed); held_s = how long each connection closed later was
         held (the head deadline).

clients  Sends --count JSON-RPC requests, each on a new connection (a normal client arriving
         while the silent ones are held), --concurrency at a time, each within --timeout
         seconds. Prints one JSON object:
           {"sent", "ok", "statuses": {...}, "errors": {...}, "p50_ms", "p99_ms", "max_ms"}
"""
import argparse
import errno
import http.client
import json
import os
import resource
import select
import socket
import threading
import time

IP_BIND_ADDRESS_NO_PORT = 24
# Closed by the server sooner than this after connecting = shed at accept (the head deadline is
# tens of seconds; a loaded machine may notice a shed connection's close late).
SHED_WITHIN = 5.0


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def silent(args):
    raise_nofile(args.count + 64)
    ep = select.epoll()
    socks = {}  # fd -> [socket, connected_at, closed_at]
    failed = 0

    def poll(timeout):
        nonlocal failed
        for fd, ev in ep.poll(timeout, 4096):
            entry = socks[fd]
            now = time.monotonic()
            if entry[1] is None:
                if ev & (select.EPOLLERR | select.EPOLLHUP) or entry[0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    failed += 1
                    ep.unregister(fd)
                    entry[2] = -1.0
                    continue
                entry[1] = now
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                if not ev & (select.EPOLLIN | select.EPOLLRDHUP):
                    continue
            # Readable after connecting: the server closed it (a silent client sends nothing).
            entry[2] = now
            ep.unregister(fd)

    start = time.monotonic()
    for i in range(args.count):
        if args.rate and i % 100 == 0:
            # Paced: a burst overflows the listen backlog, and with SYN cookies the kernel then
            # forgets connections the client believes open (they never reach the server).
            wait = start + i / args.rate - time.monotonic()
            if wait > 0:
                poll(wait)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if args.source:
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((args.source, 0))
        err = s.connect_ex((args.host, args.port))
        if err not in (0, errno.EINPROGRESS):
            failed += 1
            s.close()
            continue
        socks[s.fileno()] = [s, None, None]
        ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)

    deadline = time.monotonic() + args.connect_max
    while time.monotonic() < deadline and any(e[1] is None and e[2] is None for e in socks.values()):
        poll(0.2)
    opened = sum(1 for e in socks.values() if e[1] is not None)
    print(json.dumps({"event": "open", "opened": opened}), flush=True)
    end = time.monotonic() + args.hold_max
    while not os.path.exists(args.release_file) and time.monotonic() < end:
        poll(0.2)
    poll(0)
    held = [e[2] - e[1] for e in socks.values() if e[1] is not None and e[2] is not None]
    soon = sum(1 for h in held if h < SHED_WITHIN)
    result = {
        "opened": opened,
        "connected": sum(1 for e in socks.values() if e[1] is not None),
        "failed": failed,
        "pending": sum(1 for e in socks.values() if e[1] is None and e[2] is None),
        "closed_soon": soon,
        "closed_later": len(held) - soon,
        "held_s": sorted(round(h, 2) for h in held if h >= SHED_WITHIN),
        "still_open": sum(1 for e in socks.values() if e[1] is not None and e[2] is None),
    }
    for e in socks.values():
        e[0].close()
    print(json.dumps(result), flush=True)


def clients(args):
    body = open(args.body, "rb").read()
    lock = threading.Lock()
    latencies, statuses, errors = [], {}, {}
    todo = list(range(args.count))

    def one():
        start = time.monotonic()
        try:
            conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            key, ok = str(resp.status), resp.status == 200
        except (OSError, http.client.HTTPException) as e:
            key, ok = type(e).__name__, False
        elapsed = (time.monotonic() - start) * 1000
        with lock:
            if ok:
                latencies.append(elapsed)
                statuses[key] = statuses.get(key, 0) + 1
            elif key.isdigit():
                statuses[key] = statuses.get(key, 0) + 1
            else:
                errors[key] = errors.get(key, 0) + 1

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            one()

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1) if latencies else None

    print(json.dumps({
        "sent": args.count,
        "ok": statuses.get("200", 0),
        "statuses": statuses,
        "errors": errors,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1], 1) if latencies else None,
    }), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("silent")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--source", help="local address to connect from, e.g. 127.0.0.11")
    s.add_argument("--rate", type=float, default=2000.0, help="connects per second (0: all at once)")
    s.add_argument("--connect-max", type=float, default=15.0, help="seconds to wait for connects")
    s.add_argument("--release-file", required=True)
    s.add_argument("--hold-max", type=float, default=120.0)
    c = sub.add_parser("clients")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--count", type=int, default=200)
    c.add_argument("--concurrency", type=int, default=10)
    c.add_argument("--timeout", type=float, default=5.0)
    c.add_argument("--body", required=True)
    args = ap.parse_args()
    silent(args) if args.mode == "silent" else clients(args)


if __name__ == "__main__":
    main()
