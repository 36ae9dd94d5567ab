#!/usr/bin/env python3
"""Open N keep-alive connections to a JSON-RPC endpoint, send one request on each, read the
answer, then hold every connection open and idle until RELEASE_FILE exists (or --hold-max
seconds pass). Prints progress lines that run.sh reads:

  OPEN opened=N answered=M failed=K        (all connections are open and idle now)
  HELD still_open=N closed_by_peer=M       (checked just before closing them)
"""
import argparse
import os
import resource
import select
import socket
import sys
import time


def read_response(sock, deadline):
    """Reads one HTTP/1.1 response (Content-Length framed). Returns the status code or None."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--release-file", required=True)
    ap.add_argument("--hold-max", type=float, default=120.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    body = b'{"jsonrpc":"2.0","id":1,"method":"aztec_getBlockNumber","params":[]}'
    req = (
        b"POST / HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        b"Connection: keep-alive\r\nContent-Length: %d\r\n\r\n" % (args.host.encode(), args.port, len(body))
    ) + body

    socks, answered, failed = [], 0, 0
    for _ in range(args.count):
        try:
            s = socket.create_connection((args.host, args.port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            status = read_response(s, time.monotonic() + 5)
            if status == 200:
                answered += 1
            else:
                failed += 1
            socks.append(s)
        except OSError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
    print(f"OPEN opened={len(socks)} answered={answered} failed={failed}", flush=True)

    deadline = time.monotonic() + args.hold_max
    while not os.path.exists(args.release_file) and time.monotonic() < deadline:
        time.sleep(0.1)

    # A connection the server closed is readable and recv() returns b"" (EOF).
    closed = 0
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if r:
            try:
                s.setblocking(False)
                if s.recv(1, socket.MSG_PEEK) == b"":
                    closed += 1
            except OSError:
                closed += 1
    print(f"HELD still_open={len(socks) - closed} closed_by_peer={closed}", flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
