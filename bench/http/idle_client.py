"""bench/http/idle_client.py — idle HTTP keep-alive connections for bench/http.sh.

    idle_client.py HOST PORT N [HOLD_SECONDS]

Opens N connections to HOST:PORT one after the other; on each sends one
"GET / HTTP/1.1" request (keep-alive) and reads the whole response (Content-Length
body), which must be a 200. Then prints "RESULT open=N failed=F seconds=S" and holds the
connections, doing nothing, until stdin closes, SIGTERM/SIGINT, or HOLD_SECONDS (default
600). Before exiting it checks each connection without blocking (readable = closed by the
peer, or unexpected bytes) and prints "HELD still_open=K" — K < N means the server side
did not keep them open for the whole hold. Exit status 0 only if all N opened and held.
"""
import resource
import select
import signal
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: strata-bench-idle\r\n\r\n"
stop = False


def on_signal(_sig, _frame):
    global stop
    stop = True


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def one_exchange(host, port):
    """A connected socket that has carried one 200 response, or None."""
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed before the response head")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        if lines[0].split(b" ")[1:2] != [b"200"]:
            raise OSError("status line %r" % lines[0])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            if name.strip().lower() == b"connection" and b"close" in value.lower():
                raise OSError("server answered Connection: close")
        if length is None:
            raise OSError("no Content-Length")
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed inside the body")
            body += chunk
        s.settimeout(None)
        return s
    except (OSError, ValueError, IndexError):
        s.close()
        return None


def still_open(socks):
    """How many sockets are neither readable nor hung up (poll with no wait)."""
    p = select.poll()
    flags = select.POLLIN | select.POLLRDHUP | select.POLLHUP | select.POLLERR
    for s in socks:
        p.register(s.fileno(), flags)
    return len(socks) - len(p.poll(0))


def main():
    if len(sys.argv) < 4:
        sys.stderr.write("usage: idle_client.py HOST PORT N [HOLD_SECONDS]\n")
        return 2
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 600.0
    raise_nofile()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    socks, failed = [], 0
    t0 = time.monotonic()
    while len(socks) < n and not stop:
        s = one_exchange(host, port)
        if s is None:
            failed += 1
            if failed > 10 and failed > n // 100:
                break
            continue
        socks.append(s)
    print("RESULT open=%d failed=%d seconds=%.3f" % (len(socks), failed, time.monotonic() - t0),
          flush=True)
    end = time.monotonic() + hold
    while not stop and time.monotonic() < end:
        try:
            r, _, _ = select.select([sys.stdin], [], [], 0.2)
        except InterruptedError:
            continue
        if r and not sys.stdin.buffer.read1(256):
            break
    k = still_open(socks)
    print("HELD still_open=%d" % k, flush=True)
    for s in socks:
        s.close()
    return 0 if len(socks) == n and k == n else 1


if __name__ == "__main__":
    sys.exit(main())
