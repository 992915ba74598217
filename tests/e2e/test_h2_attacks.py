"""HTTP/2 attacks sent with raw frames (hyperframe + hpack), each against the limit of
listeners[].http.h2 that stops it: the connection ends with GOAWAY(ENHANCE_YOUR_CALM) or
the stream is refused or reset, the limit's counter in /metrics moves, Strata's memory and
CPU stay bounded, and a well-behaved client on another connection is served meanwhile."""
import socket
import threading
import time

import hyperframe.frame as hf
import pytest

from conftest import wait_for

from test_h2 import (ERR, Raw, h2_config, h2_request, h2c, limit_hits,  # noqa: F401
                     proc_stats, two_ports)

MAX_RSS_GROWTH_KIB = 32 * 1024
MAX_CPU_S = 5.0


def well_behaved_served(s):
    status, _, body = h2_request(s.port, "/hello", timeout=10)
    assert (status, body) == (200, b"hi there\n")


def attack(s, frames, limit, settings=None, goaway=True, batches=1):
    """Sends `frames` (a list, or a function of the Raw connection giving one) in
    `batches`, checks a good client is served meanwhile, then that the connection ends with
    ENHANCE_YOUR_CALM, `limit` was counted and resources stayed bounded."""
    rss0, cpu0 = proc_stats(s.pid)
    raw = Raw(s.port, settings=settings)
    for _ in range(batches):
        if not raw.send(*(frames(raw) if callable(frames) else frames)):
            break
    well_behaved_served(s)
    if goaway:
        g = raw.goaway(10)
        assert g is not None, "no GOAWAY"
        assert ERR.get(g.error_code) == "ENHANCE_YOUR_CALM", g
    raw.close()
    assert limit_hits(s, limit) >= 1
    rss1, cpu1 = proc_stats(s.pid)
    print(f"{limit}: rss +{rss1 - rss0} KiB, cpu {cpu1 - cpu0:.2f} s")
    assert rss1 - rss0 < MAX_RSS_GROWTH_KIB, (rss0, rss1)
    assert cpu1 - cpu0 < MAX_CPU_S, (cpu0, cpu1)
    well_behaved_served(s)
    return raw


def test_settings_flood(h2c):
    s = h2c()
    attack(s, [hf.SettingsFrame(0, {hf.SettingsFrame.ENABLE_PUSH: 0})] * 1000,
           "max_settings_per_second")
    assert s.metrics(s.admin).get("strata_listener_h2_calm_goaways_total", listener="web") >= 1


def test_ping_flood(h2c):
    s = h2c()
    attack(s, [hf.PingFrame(0, opaque_data=b"12345678")] * 2000, "max_pings_per_second")


def test_priority_flood(h2c):
    s = h2c()
    frames = [hf.PriorityFrame(2 * i + 1, depends_on=0, stream_weight=16) for i in range(5000)]
    attack(s, frames, "max_priority_per_second")


def test_window_update_flood(h2c):
    s = h2c()
    attack(s, [hf.WindowUpdateFrame(0, 1)] * 5000, "max_window_updates_per_second")


def test_empty_data_flood(h2c):
    s = h2c()

    def frames(raw):
        # a stream the client keeps open: its request body never ends
        return [raw.headers(1, path="/app/x", end_stream=False, method="POST")] + \
            [hf.DataFrame(1, b"")] * 1000
    attack(s, frames, "max_empty_data_per_second")


def test_rapid_reset(h2c):
    """CVE-2023-44487: streams opened and reset at once, as fast as the client can."""
    s = h2c()

    def frames(raw):
        out = []
        for i in range(2000):
            sid = 2 * i + 1
            out += [raw.headers(sid, path="/app/x"), hf.RstStreamFrame(sid, error_code=8)]
        return out
    attack(s, frames, "max_resets_per_second")


def test_made_you_reset(h2c):
    """CVE-2025-8671: frames that make Strata reset the stream itself: a WINDOW_UPDATE that
    overflows the stream's window, DATA past the content-length."""
    s = h2c()

    def frames(raw):
        out = []
        for i in range(1000):
            sid = 2 * i + 1
            if i % 2:
                out += [raw.headers(sid, path="/app/x", end_stream=False, method="POST"),
                        hf.WindowUpdateFrame(sid, 0x7fffffff)]
            else:
                out += [raw.headers(sid, path="/app/x", end_stream=False, method="POST",
                                    extra=[("content-length", "1")]),
                        hf.DataFrame(sid, b"toolong")]
        return out
    attack(s, frames, "max_glitches_per_second")


def test_continuation_flood(h2c):
    s = h2c()

    def frames(raw):
        h = hf.HeadersFrame(1, raw.block([(":method", "GET"), (":scheme", "http"),
                                          (":authority", "x"), (":path", "/hello")]))
        return [h] + [hf.ContinuationFrame(1, raw.block([("x-a", "b" * 100)]))] * 1000
    rss0, _ = proc_stats(s.pid)
    raw = Raw(s.port)
    raw.send(*frames(raw))
    well_behaved_served(s)
    raw.read(timeout=5)  # the connection ends (a GOAWAY, or EOF at once)
    raw.close()
    assert limit_hits(s, "max_continuations") >= 1
    assert proc_stats(s.pid)[0] - rss0 < MAX_RSS_GROWTH_KIB


def test_hpack_bomb(h2c):
    """One 4000-byte field in the dynamic table, then referenced 10000 times: 40 MB of
    decoded header list from a 14 KB block. Answered 431; nothing of it is kept."""
    s = h2c()
    big = ("x-bomb", "a" * 4000)
    raw = Raw(s.port)
    first = raw.block([(":method", "GET"), (":scheme", "http"), (":authority", "x"),
                       (":path", "/hello"), big])
    block = first + bytes([0x80 | 62]) * 10000  # indexed: the dynamic table's newest entry
    h = hf.HeadersFrame(1, block)
    h.flags.add("END_HEADERS")
    h.flags.add("END_STREAM")
    rss0, cpu0 = proc_stats(s.pid)
    raw.send(h)
    well_behaved_served(s)
    frames = raw.read(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags, timeout=5)
    heads = [f for f in frames if isinstance(f, hf.HeadersFrame) and f.stream_id == 1]
    assert heads and b"431" in heads[0].data or any(
        isinstance(f, (hf.RstStreamFrame, hf.GoAwayFrame)) for f in frames), frames
    raw.close()
    rss1, cpu1 = proc_stats(s.pid)
    assert rss1 - rss0 < MAX_RSS_GROWTH_KIB and cpu1 - cpu0 < MAX_CPU_S
    assert limit_hits(s, "max_header_size") >= 1


def test_max_concurrent_streams(h2c):
    """Streams held open by the client's closed window: those past the limit are refused."""
    s = h2c(h2="cleartext: true, max_concurrent_streams: 20")
    raw = Raw(s.port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(*[raw.headers(2 * i + 1) for i in range(50)])
    frames = raw.read(timeout=3)
    refused = [f for f in frames if isinstance(f, hf.RstStreamFrame) and
               ERR.get(f.error_code) == "REFUSED_STREAM"]
    assert len(refused) == 30, frames
    well_behaved_served(s)
    assert limit_hits(s, "max_concurrent_streams") >= 30
    raw.close()


def test_zero_window_stall_is_reset(h2c):
    s = h2c(h2="cleartext: true, stream_stall_timeout: 1s")
    raw = Raw(s.port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(raw.headers(1))
    frames = raw.read(lambda f: isinstance(f, hf.RstStreamFrame), timeout=6)
    rst = [f for f in frames if isinstance(f, hf.RstStreamFrame)]
    assert rst and rst[0].stream_id == 1 and ERR.get(rst[0].error_code) == "CANCEL", frames
    well_behaved_served(s)
    assert limit_hits(s, "stream_stall_timeout") >= 1
    raw.close()


@pytest.mark.parametrize("n", [3])
def test_attackers_do_not_starve_each_other(h2c, n):
    """Several flooding connections at once; each ends, the good client is served."""
    s = h2c()
    raws = [Raw(s.port) for _ in range(n)]
    for r in raws:
        r.send(*[hf.PingFrame(0, opaque_data=b"abcdefgh")] * 1000)
    well_behaved_served(s)
    for r in raws:
        assert r.goaway(10) is not None
        r.close()


def test_rapid_reset_cancels_server_side(strata, backends):
    """Rapid reset against a server that never answers: each reset stream's server
    connection is closed (its server side cancelled), none is left open, and the attack
    ends with ENHANCE_YOUR_CALM."""

    stop = threading.Event()

    def hang(c):
        c.settimeout(0.2)
        while not stop.is_set():
            try:
                if not c.recv(65536):
                    return
            except socket.timeout:
                continue
    b = backends.threaded(hang)
    port, admin = two_ports()
    s = strata(h2_config(port, admin, backends={"app": {"servers": [("s1", b.address)]}}),
               listen_ports=[port], admin_port=admin)
    s.port, s.admin = port, admin
    try:
        raw = Raw(port)
        frames = []
        for i in range(1000):
            sid = 2 * i + 1
            frames += [raw.headers(sid, path="/app/x"), hf.RstStreamFrame(sid, error_code=8)]
        raw.send(*frames)
        g = raw.goaway(10)
        assert g is not None and ERR.get(g.error_code) == "ENHANCE_YOUR_CALM"
        raw.close()
        assert limit_hits(s, "max_resets_per_second") >= 1
        assert s.metrics(admin).get("strata_server_http_requests_total", backend="app",
                                    server="s1") >= 1  # the streams reached the server

        def none_active():
            m = s.metrics(admin)
            return m.get("strata_server_connections_active", backend="app", server="s1") == 0
        wait_for(none_active, 10, what="no server connection left open")
    finally:
        stop.set()


def test_client_that_never_reads(strata, origin):
    """Windows wide open but the socket never read: Strata stops producing once its output
    waits, reads the server no further, and ends the connection after
    stream_stall_timeout; its memory does not hold the 32 MB the server has."""
    o = origin("big", lambda req: (200, {}, b"z" * (32 << 20)))
    port, admin = two_ports()
    s = strata(h2_config(port, admin, h2="cleartext: true, stream_stall_timeout: 1s",
                         backends={"app": {"servers": [o.address]}}),
               listen_ports=[port], admin_port=admin)
    s.port, s.admin = port, admin
    rss0, _ = proc_stats(s.pid)
    raw = Raw(port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0x7fffffff})
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw.send(hf.WindowUpdateFrame(0, 0x7fffffff - 65535), raw.headers(1, path="/app/big"))
    time.sleep(3.0)
    rss1, _ = proc_stats(s.pid)
    well_behaved_served(s)
    got, eof = 0, False
    raw.sock.settimeout(5)
    try:
        while chunk := raw.sock.recv(1 << 20):
            got += len(chunk)
        eof = True
    except socket.timeout:
        eof = False
    except OSError:
        eof = True  # reset: closed too
    raw.close()
    assert eof
    print(f"never-reading client: {got} bytes reached it, rss +{rss1 - rss0} KiB")
    assert got < 24 << 20 and rss1 - rss0 < 16 * 1024, (got, rss0, rss1)


def test_many_stalled_streams_share_one_budget(strata, origin):
    """100 streams whose client window stays closed, each answered 2 MB by the server, with
    a stream_buffer of 1 MB: together they hold about H2_CONN_HELD (1 MiB) of response, not
    100 MB of stream buffers."""
    o = origin("big", lambda req: (200, {}, b"y" * (2 << 20)))
    port, admin = two_ports()
    s = strata(h2_config(port, admin,
                         h2="cleartext: true, stream_stall_timeout: 5s, stream_buffer: 1m",
                         backends={"app": {"servers": [o.address]}}),
               listen_ports=[port], admin_port=admin)
    s.port, s.admin = port, admin
    rss0, _ = proc_stats(s.pid)
    raw = Raw(port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(*[raw.headers(2 * i + 1, path=f"/app/b{i}") for i in range(100)])
    wait_for(lambda: len(o.requests) >= 100, 10, what="100 requests at the server")
    time.sleep(1.0)
    rss1, _ = proc_stats(s.pid)
    print(f"100 stalled streams: rss +{rss1 - rss0} KiB")
    assert rss1 - rss0 < 16 * 1024, (rss0, rss1)
    well_behaved_served(s)
    raw.close()
