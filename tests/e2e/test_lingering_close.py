"""mode: http — the lingering close. When Strata answers before it has read the whole request
(a 413 during an upload, a 400 with bytes after the bad head, a `Connection: close` request
with more pipelined behind it, an HTTP/2 GOAWAY after a protocol error) and then closes,
unread bytes in the socket would make the kernel reset the connection, and the client
would see ECONNRESET instead of a clean end, or lose the answer. Strata shuts its sending
side after the answer and reads and discards what still comes, until the client closes or
`lingering_timeout` passes. Each test reads the answer only after the client's extra bytes
are in Strata's socket, the case where a plain close resets."""
import os
import socket
import threading
import time

import hyperframe.frame as hf
import pytest

from conftest import connect, free_ports, wait_for
from http_backend import http_config
from test_h2 import Raw, h2_config

MIB = 1 << 20
UPLOAD_HEAD = b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 * MIB)


def start(strata, lingering="5s", http_extra="", make_cfg=None):
    """A Strata with one HTTP listener (max_request_body 1m, route /ok answers 200) or the
    one make_cfg(port, admin) gives."""
    port, admin = free_ports(2)
    cfg = make_cfg(port, admin) if make_cfg else http_config(port, {"app": {"servers": ["127.0.0.1:1"]}}, admin_port=admin,
                             routes='- name: ok\n  match: { path: /ok }\n'
                                    '  respond: { status: 200, body: "ok\\n" }\n',
                             http_extra=f"max_request_body: 1m\nlingering_timeout: {lingering}\n"
                                        + http_extra, workers=1)
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    s.admin = admin
    return s, port


def lingered(s):
    """strata_listener_http_lingering_closes_total of the listener."""
    return s.metrics(s.admin).get("strata_listener_http_lingering_closes_total",
                                  listener="web") or 0


def read_to_end(sock, limit=1 << 20):
    """Everything until the end of the connection, and how it ended: "eof" or the error."""
    got = b""
    while len(got) <= limit:
        try:
            b = sock.recv(65536)
        except OSError as e:
            return got, type(e).__name__
        if not b:
            return got, "eof"
        got += b
    raise AssertionError(f"more than {limit} bytes")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def early_413(port, extra=256 * 1024):
    """A 4 MiB upload over max_request_body, of which only `extra` bytes are sent; the
    answer is read after a pause, when Strata has answered and closed or is lingering."""
    c = connect(port)
    c.sendall(UPLOAD_HEAD + b"z" * extra)
    time.sleep(0.2)
    return c


@pytest.mark.parametrize("lingering", ["5s", "0"])
def test_answer_before_the_body_ends_cleanly(strata, lingering):
    s, port = start(strata, lingering)
    for _ in range(3):
        c = early_413(port)
        got, end = read_to_end(c)
        c.close()
        assert got.startswith(b"HTTP/1.1 413 "), got[:80]
        if lingering == "0":  # the plain close this feature replaces: the client sees a reset
            assert end == "ConnectionResetError", end
        else:
            assert end == "eof", end
    assert lingered(s) == (0 if lingering == "0" else 3)


def test_bytes_after_a_bad_head_end_cleanly(strata):
    s, port = start(strata)
    c = connect(port)
    c.sendall(b"NOT HTTP AT ALL\r\n\r\n" + b"x" * (256 * 1024))
    time.sleep(0.2)
    got, end = read_to_end(c)
    assert got.startswith(b"HTTP/1.1 400 "), got[:80]
    assert end == "eof", end


def test_requests_pipelined_after_connection_close_end_cleanly(strata):
    s, port = start(strata)
    c = connect(port)
    more = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" * 4000  # 120 kB the client will not get
    c.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + more)
    time.sleep(0.2)
    got, end = read_to_end(c)
    assert got.startswith(b"HTTP/1.1 200 ") and got.count(b"HTTP/1.1 ") == 1, got[:200]
    assert end == "eof", end
    assert lingered(s) == 1
    c = connect(port)  # a request read whole, nothing after it: a plain close
    c.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_to_end(c)[0].startswith(b"HTTP/1.1 200 ")
    assert lingered(s) == 1


@pytest.mark.parametrize("lingering", ["1h", "300ms"])
def test_lingering_ends_at_the_clients_close_or_the_timeout(strata, lingering):
    s, port = start(strata, lingering)
    base = open_fds(s.pid)
    c = early_413(port)
    got, end = read_to_end(c)
    assert got.startswith(b"HTTP/1.1 413 ") and end == "eof"
    t0 = time.monotonic()
    if lingering == "1h":
        time.sleep(0.3)
        assert open_fds(s.pid) == base + 1  # still reading what the client sends
        c.close()
    wait_for(lambda: open_fds(s.pid) == base, 5, what="the lingering connection closed")
    assert time.monotonic() - t0 < 2.0
    c.close()


def test_a_client_that_keeps_sending_is_cut_at_the_timeout(strata):
    """Lingering is bounded in time, not by the client: an upload that never stops is read
    for lingering_timeout, then reset; Strata serves others meanwhile."""
    s, port = start(strata, lingering="500ms")
    c = connect(port)
    c.sendall(UPLOAD_HEAD)
    stop, result = threading.Event(), {}

    def upload():
        t0 = time.monotonic()
        try:
            while not stop.is_set() and time.monotonic() - t0 < 10:
                c.sendall(b"z" * 65536)
            result["end"] = "still sending"
        except OSError as e:
            result["end"] = type(e).__name__
        result["s"] = time.monotonic() - t0

    t = threading.Thread(target=upload)
    t.start()
    other = connect(port)
    other.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_to_end(other)[0].startswith(b"HTTP/1.1 200 ")
    t.join(8)
    stop.set()
    t.join(3)
    c.close()
    assert result.get("end") in ("ConnectionResetError", "BrokenPipeError"), result
    assert result["s"] < 5, result


def test_h2_goaway_after_a_protocol_error_ends_cleanly(strata):
    s, port = start(strata, make_cfg=lambda port, admin: h2_config(
        port, admin, http_extra="lingering_timeout: 5s\n", workers=1))
    raw = Raw(port)
    # DATA on stream 0, a connection error (RFC 9113 6.1): length 16, type 0, flags 0, id 0
    bad = (16).to_bytes(3, "big") + b"\0\0" + (0).to_bytes(4, "big") + b"x" * 16
    raw.sock.sendall(bad + b"\0" * (256 * 1024))
    time.sleep(0.2)
    got, end = read_to_end(raw.sock)
    raw.close()
    frames, buf = [], got
    while len(buf) >= 9:
        f, n = hf.Frame.parse_frame_header(memoryview(buf[:9]))
        f.parse_body(memoryview(buf[9:9 + n]))
        frames.append(f)
        buf = buf[9 + n:]
    goaways = [f for f in frames if isinstance(f, hf.GoAwayFrame)]
    assert goaways and goaways[0].error_code == 1, frames  # PROTOCOL_ERROR
    assert end == "eof", end
    assert lingered(s) == 1


@pytest.mark.parametrize("lingering, drain", [("2s", "1m"), ("1h", "1s")])
def test_a_lingering_connection_holds_a_stop_no_longer_than_its_timeout(strata, lingering,
                                                                         drain):
    """SIGTERM while a connection lingers: the worker waits for it (its answer may still be
    on the way) for at most lingering_timeout, or timeouts.drain if that is shorter, and
    then exits 0."""
    port, admin = free_ports(2)
    s = strata(http_config(port, {"app": {"servers": ["127.0.0.1:1"]}}, admin_port=admin,
                           http_extra=f"max_request_body: 1m\nlingering_timeout: {lingering}\n",
                           workers=1, drain=drain),
               listen_ports=[port], admin_port=admin)
    c = early_413(port)
    got, end = read_to_end(c)
    assert got.startswith(b"HTTP/1.1 413 ") and end == "eof"
    t0 = time.monotonic()
    rc, clean = s.stop(timeout=10)
    took = time.monotonic() - t0
    c.close()
    assert clean and rc == 0, (rc, s.log()[-2000:])
    assert 0.5 < took < 4, took  # waited for the lingering connection, within its bound
