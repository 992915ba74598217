"""Active gRPC health checks (`health_check: { type: grpc }`): grpc.health.v1.Health/Check
over h2c (or h2 over TLS with ALPN), against python3-grpcio servers (grpc_backend.py).
A server answering NOT_SERVING, an unknown service (NOT_FOUND) or a stopped server is
taken down with the reason in the DOWN line and strata_server_up 0; it comes back up once
it answers SERVING again."""

import pytest

from conftest import free_port, simple_config, wait_for

HC = "health_check: {{ type: grpc, interval: 200ms, timeout: 500ms, rise: 2, fall: 2{extra} }}"


def start_pair(strata, grpc_origin, extra="", backend_extra="", tls=False):
    srvs = [grpc_origin(name=f"g{i + 1}", tls=tls) for i in range(2)]
    port, admin = free_port(), free_port()
    be = HC.format(extra=extra) + ("\n" + backend_extra if backend_extra else "")
    cfg = simple_config(port, [(f"g{i + 1}", s.address) for i, s in enumerate(srvs)],
                        admin_port=admin, workers=1, backend_extra=be)
    s = strata(cfg, listen_ports=[port], admin_port=admin)

    def up(name):
        return s.metrics(admin).get("strata_server_up", backend="app", server=name)

    return s, srvs, up


@pytest.mark.timeout(60)
def test_grpc_health_not_serving_then_serving(strata, grpc_origin):
    s, srvs, up = start_pair(strata, grpc_origin)
    wait_for(lambda: up("g1") == 1 and up("g2") == 1, 5, what="both servers up")
    # servers start up: the first check may not have run yet
    wait_for(lambda: srvs[0].calls.get("Check", 0) >= 1, 5, what="a Check call on g1")
    # the request was a gRPC call the server understood, with our user agent and deadline
    md = next(m for meth, m in srvs[0].metadata if meth == "Check")
    assert md.get("user-agent", "").startswith("strata-health"), md

    srvs[1].health[""] = 2  # NOT_SERVING
    s.wait_log(r"server app/g2 is DOWN: 2 consecutive failed gRPC checks "
               r"\(status NOT_SERVING \(2\), expected SERVING\)", timeout=5)
    wait_for(lambda: up("g2") == 0, 3, what="strata_server_up{server=g2} == 0")
    assert up("g1") == 1

    srvs[1].health[""] = 1
    s.wait_log(r"server app/g2 is UP: 2 consecutive successful gRPC checks", timeout=5)
    wait_for(lambda: up("g2") == 1, 3, what="strata_server_up{server=g2} == 1")
    log = s.log()
    assert log.count("app/g2 is DOWN") == 1 and "app/g1 is DOWN" not in log


@pytest.mark.timeout(60)
def test_grpc_health_stopped_server_and_restart(strata, grpc_origin):
    from grpc_backend import GrpcBackend
    s, srvs, up = start_pair(strata, grpc_origin)
    wait_for(lambda: up("g1") == 1 and up("g2") == 1, 5, what="both servers up")
    port = srvs[0].port
    srvs[0].stop()
    s.wait_log(r"server app/g1 is DOWN: 2 consecutive failed gRPC checks "
               r"\(connection refused\)", timeout=5)
    wait_for(lambda: up("g1") == 0, 3, what="strata_server_up{server=g1} == 0")
    back = GrpcBackend(name="g1", port=port).start()
    try:
        s.wait_log(r"server app/g1 is UP", timeout=5)
        wait_for(lambda: up("g1") == 1, 3, what="strata_server_up{server=g1} == 1")
    finally:
        back.stop()


@pytest.mark.timeout(60)
def test_grpc_health_service_name(strata, grpc_origin):
    """`service` is sent in the HealthCheckRequest; a service the server does not know is
    NOT_FOUND (grpc-status 5) and a failure, with the server's message in the reason."""
    s, srvs, up = start_pair(strata, grpc_origin, extra=", service: strata.test.Echo")
    wait_for(lambda: up("g1") == 1 and up("g2") == 1, 5, what="both servers up")
    del srvs[0].health["strata.test.Echo"]
    s.wait_log(r"server app/g1 is DOWN: .*grpc-status 5 \(NOT_FOUND\): "
               r"\"unknown service 'strata.test.Echo'\"", timeout=5)
    srvs[0].health["strata.test.Echo"] = 1
    s.wait_log(r"server app/g1 is UP", timeout=5)
    assert up("g2") == 1


@pytest.mark.timeout(60)
def test_grpc_health_over_tls(strata, grpc_origin):
    """A backend with `tls`: h2 over TLS, ALPN h2 offered by the check whatever the
    backend's own `alpn` list (here none)."""
    s, srvs, up = start_pair(strata, grpc_origin, tls=True,
                             backend_extra="tls: { verify: false }")
    wait_for(lambda: up("g1") == 1 and up("g2") == 1, 5, what="both servers up over TLS")
    srvs[1].health[""] = 2
    s.wait_log(r"server app/g2 is DOWN: .*NOT_SERVING", timeout=5)
    srvs[1].health[""] = 1
    s.wait_log(r"server app/g2 is UP", timeout=5)


@pytest.mark.timeout(30)
def test_grpc_health_on_a_plain_http_server(strata, origin):
    """An HTTP/1.1 server is not a gRPC server: the check fails (an HTTP/2 error), it does
    not hang or crash."""
    o = origin("h1")
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("h1", o.address)], admin_port=admin, workers=1,
                        backend_extra=HC.format(extra=""))
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    s.wait_log(r"server app/h1 is DOWN: 2 consecutive failed gRPC checks", timeout=5)
    assert s.alive()
