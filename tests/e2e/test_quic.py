"""QUIC connection-ID routing on a `mode: udp` listener (`udp.quic`), with crafted packets
(no QUIC stack): Initials spread by a consistent hash of their DCID, the same in every
worker and every Strata instance; short headers carrying a server's QUIC-LB server ID reach
that server from any client address; non-QUIC datagrams and unknown server IDs dropped and
counted; a down server's ID falls back to the hash.

Backends are UDP echoes that prefix their name to each reply and record what they got.
"""

import os
import socket
import threading

import pytest

from conftest import LOOPBACK, free_port, wait_for
from test_udp import flow_logs, free_udp_port, start_udp

CID_LEN, SID_LEN = 8, 2
IDS = {"a": bytes.fromhex("0a01"), "b": bytes.fromhex("0b02"), "c": bytes.fromhex("0c03")}


# --------------------------------------------------------------------------- packets

def initial(dcid, scid=b"\x11" * 8):
    """A v1 client Initial padded to 1200 bytes, as quic_build_initial writes it."""
    head = bytes([0xC0]) + b"\x00\x00\x00\x01" + bytes([len(dcid)]) + dcid
    head += bytes([len(scid)]) + scid + b"\x00"  # empty token
    length = 1200 - len(head) - 2
    head += bytes([0x40 | length >> 8, length & 0xFF])
    return head + bytes(1200 - len(head))


def short(dcid):
    """A short-header packet, as quic_build_short writes it."""
    return b"\x40" + dcid + bytes(21)


def lb_cid(sid, config_id=0):
    """A plaintext QUIC-LB connection ID: first octet (config rotation bits + random), the
    server ID, then a random nonce, CID_LEN bytes in all."""
    first = (config_id << 5) | (os.urandom(1)[0] & 0x1F)
    return bytes([first]) + sid + os.urandom(CID_LEN - 1 - len(sid))


def random_dcid():
    """A client-chosen DCID with config rotation 0b111: never routable by server ID."""
    return bytes([0xE0 | (os.urandom(1)[0] & 0x1F)]) + os.urandom(CID_LEN - 1)


# --------------------------------------------------------------------------- backends

class NamedEcho:
    """A UDP server that answers every datagram with b"<name>:" + the datagram, and keeps
    what it got (.received)."""

    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self.received = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received.append(data)
            try:
                self.sock.sendto(self.name.encode() + b":" + data, peer)
            except OSError:
                pass

    def got(self, data):
        return data in self.received

    def stop(self):
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.sock.close()


@pytest.fixture
def echoes():
    started = []
    yield lambda: started.extend(NamedEcho(n) for n in IDS) or started[-len(IDS):]
    for e in started:
        e.stop()


def quic_config(port, admin, servers, workers=4, backend_extra=""):
    text = f"workers: {workers}\n"
    text += "timeouts: { connect: 1s, idle: 1m, drain: 1s }\n"
    text += f"admin: {{ listen: {LOOPBACK}:{admin} }}\n"
    text += "listeners:\n"
    text += f'  - name: quic\n    listen: "{LOOPBACK}:{port}"\n    mode: udp\n    backend: app\n'
    text += (f"    udp: {{ quic: {{ cid_length: {CID_LEN}, server_id_length: {SID_LEN}, "
             "config_id: 0 } }\n")
    text += "backends:\n  app:\n"
    text += "".join(f"    {ln}\n" for ln in backend_extra.strip("\n").splitlines())
    text += "    servers:\n"
    for e in servers:
        text += (f'      - {{ name: {e.name}, address: "{e.address}", '
                 f'quic_id: "{IDS[e.name].hex()}" }}\n')
    return text


# Client sockets stay open until the test ends: a closed one's port could be handed to the
# next socket while Strata still has a flow for it, and that datagram would then ride the
# old flow to the old server instead of opening a new one.
_open_clients = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _open_clients:
        _open_clients.pop().close()


def send_new(port, payload, timeout=1.0):
    """Sends one datagram from a new client socket (a new address); returns the name of
    the server that answered, or None when nothing came back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _open_clients.append(s)
    s.settimeout(timeout)
    s.sendto(payload, (LOOPBACK, port))
    try:
        reply = s.recvfrom(1 << 17)[0]
    except socket.timeout:
        return None
    name, _, echoed = reply.partition(b":")
    assert echoed == payload, "the reply does not echo the datagram"
    return name.decode()


def quic_metric(s, admin, what):
    return s.metrics(admin).get(f"strata_listener_quic_{what}_total", listener="quic")


def start(strata, echoes_list, workers=4, backend_extra=""):
    port, admin = free_udp_port(), free_port()
    cfg = quic_config(port, admin, echoes_list, workers, backend_extra)
    return start_udp(strata, cfg, [port], admin), port, admin


# --------------------------------------------------------------------------- tests

@pytest.mark.timeout(60)
def test_initials_hash_consistently_and_spread(strata, echoes):
    """One Initial DCID from 10 client addresses (spread over 4 workers) always reaches the
    same server, which a second Strata instance picks too; 40 DCIDs use every server."""
    servers = echoes()
    s, port, admin = start(strata, servers)
    s2, port2, _ = start(strata, servers)

    dcid = random_dcid()
    picks = {send_new(port, initial(dcid)) for _ in range(10)}
    assert len(picks) == 1 and None not in picks, picks
    (chosen,) = picks
    assert sum(e.received.count(initial(dcid)) for e in servers if e.name != chosen) == 0
    assert send_new(port2, initial(dcid)) == chosen, "another instance picked another server"

    spread = {}
    for _ in range(40):
        d = random_dcid()
        name = send_new(port, initial(d))
        assert name is not None
        assert send_new(port2, initial(d)) == name
        spread[name] = spread.get(name, 0) + 1
    assert set(spread) == set(IDS), spread
    wait_for(lambda: quic_metric(s, admin, "routed_by_hash") == 50, 5, what="50 hashed flows")
    assert quic_metric(s, admin, "routed_by_server_id") == 0


@pytest.mark.timeout(60)
def test_server_id_routes_from_any_address(strata, echoes):
    """A short header whose DCID carries a server's ID reaches that server from a new client
    address, with no Initial first; so does an Initial whose DCID carries one."""
    servers = echoes()
    s, port, admin = start(strata, servers)
    for e in servers:
        for _ in range(5):
            pkt = short(lb_cid(IDS[e.name]))
            assert send_new(port, pkt) == e.name
            assert e.got(pkt)
        assert send_new(port, initial(lb_cid(IDS[e.name]))) == e.name
    wait_for(lambda: quic_metric(s, admin, "routed_by_server_id") == 18, 5,
             what="18 flows routed by server ID")
    assert quic_metric(s, admin, "routed_by_hash") == 0
    s.stop()
    flows = flow_logs(s)
    assert len(flows) == 18 and all(f.get("quic") == "server_id" for f in flows), flows


@pytest.mark.timeout(60)
def test_invalid_and_unroutable_are_dropped(strata, echoes):
    """Non-QUIC datagrams and short headers without a known server ID open no flow and reach
    no server; each is counted. A datagram of an open flow is relayed whatever it holds."""
    servers = echoes()
    s, port, admin = start(strata, servers)
    for junk in (b"hi", b"\xc0\x00\x00", b"", b"\x80" + bytes(4) + b"\x30"):
        assert send_new(port, junk, timeout=0.3) is None
    for pkt in (short(lb_cid(b"\xff\xff")), short(lb_cid(IDS["a"], config_id=1)),
                short(bytes([0xE0]) + IDS["a"] + bytes(5))):
        assert send_new(port, pkt, timeout=0.3) is None
    assert all(not e.received for e in servers), [e.received for e in servers]
    wait_for(lambda: quic_metric(s, admin, "dropped_unroutable") == 3, 5, what="3 unroutable")
    m = s.metrics(admin)
    assert m.get("strata_listener_quic_dropped_invalid_total", listener="quic") == 4
    assert m.get("strata_listener_datagrams_dropped_total", listener="quic") == 7
    assert m.get("strata_listener_flows_created_total", listener="quic") == 0

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(1.0)
        c.sendto(initial(random_dcid()), (LOOPBACK, port))
        first = c.recvfrom(1 << 17)[0].partition(b":")[0]
        c.sendto(b"not quic, same flow", (LOOPBACK, port))
        assert c.recvfrom(1 << 17)[0] == first + b":not quic, same flow"


@pytest.mark.timeout(60)
def test_down_server_id_falls_back_to_the_hash(strata, echoes):
    """A short header naming a server that the health check took down goes to a live server
    by the DCID hash (counted as hashed), so the client hears from a server at once."""
    servers = echoes()
    hc = ('health_check: { type: udp, payload_hex: "ff", interval: 200ms, timeout: 300ms, '
          "rise: 2, fall: 2 }")
    s, port, admin = start(strata, servers, workers=2, backend_extra=hc)
    b = next(e for e in servers if e.name == "b")
    assert send_new(port, short(lb_cid(IDS["b"]))) == "b"
    b.stop()
    s.wait_log(r"server app/b is DOWN", timeout=10)
    hashed_before = quic_metric(s, admin, "routed_by_hash")
    for _ in range(10):
        name = send_new(port, short(lb_cid(IDS["b"])))
        assert name in ("a", "c"), name
    assert send_new(port, short(lb_cid(IDS["a"]))) == "a"
    wait_for(lambda: quic_metric(s, admin, "routed_by_hash") == hashed_before + 10, 5,
             what="10 hashed flows")
    s.stop()
    routes = [(f["server"], f.get("quic")) for f in flow_logs(s)]
    assert routes.count(("b", "server_id")) == 1, routes
    assert sum(1 for srv, how in routes if how == "hash" and srv in ("a", "c")) == 10, routes
