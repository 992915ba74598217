"""A small HTTP/1.1 origin server for the end-to-end tests, written on raw sockets so that
it records exactly what reached it (every request head and body, per connection), which
the request-smuggling tests need to prove that no second request was smuggled through.

    srv = HttpBackend(name="a").start()
    srv.requests        # [Request], in arrival order
    srv.connections     # connections accepted (keep-alive reuse shows here)
    srv.respond = lambda req: (200, {"x-a": "1"}, b"body")   # or a Response / raw bytes

Requests are parsed leniently on purpose (the backend must see what a proxy sends, not
judge it); bodies with Content-Length and chunked bodies are read. A handler may return
`CLOSE` to close without answering, or raw bytes to send as they are.
"""
import socket
import threading
import time

from conftest import LOOPBACK, ThreadedServer, wait_count

CLOSE = object()


class Request:
    def __init__(self, method, target, version, headers, body, raw_head, conn_id):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head
        self.conn_id = conn_id

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<Request {self.method} {self.target} conn={self.conn_id}>"


def _read_until(sock, buf, marker, limit=1 << 20):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return buf, False
        buf += chunk
        if len(buf) > limit:
            return buf, False
    return buf, True


def _read_n(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            return buf, False
        buf += chunk
    return buf, True


def _read_chunked(sock, buf):
    body = b""
    while True:
        buf, ok = _read_until(sock, buf, b"\r\n")
        if not ok:
            return None, buf
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            # trailers up to the empty line
            buf, ok = _read_until(sock, buf, b"\r\n")
            while ok and not buf.startswith(b"\r\n"):
                _, buf = buf.split(b"\r\n", 1)
                buf, ok = _read_until(sock, buf, b"\r\n")
            return body, buf[2:] if ok else buf
        buf, ok = _read_n(sock, buf, size + 2)
        if not ok:
            return None, buf
        body += buf[:size]
        buf = buf[size + 2:]


def default_respond(req):
    return 200, {"content-type": "text/plain"}, f"{req.method} {req.target}\n".encode()


class HttpBackend:
    def __init__(self, name="backend", respond=None, port=0, host=LOOPBACK):
        self.name = name
        self.respond = respond or default_respond
        self.requests = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = ThreadedServer(self._handle, port=port, host=host)

    def start(self):
        self._server.start()
        return self

    def stop(self):
        self._server.stop()

    @property
    def port(self):
        return self._server.port

    @property
    def address(self):
        return self._server.address

    @property
    def errors(self):
        return self._server.errors

    def wait_requests(self, n, timeout=5.0):
        return wait_count(self.requests, n, timeout)

    def _handle(self, sock):
        with self._lock:
            self.connections += 1
            conn_id = self.connections
        buf = b""
        for _ in range(100000):  # bounded: one iteration per request
            buf, ok = _read_until(sock, buf, b"\r\n\r\n")
            if not ok:
                return
            raw_head, buf = buf.split(b"\r\n\r\n", 1)
            lines = raw_head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            method, target, version = (parts + ["", "", ""])[:3]
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers.append((k, v.strip()))
            req = Request(method, target, version, headers, b"", raw_head, conn_id)
            te = req.header("transfer-encoding")
            cl = req.header("content-length")
            if te and "chunked" in te.lower():
                body, buf = _read_chunked(sock, buf)
                if body is None:
                    return
                req.body = body
            elif cl is not None:
                n = int(cl)
                buf, ok = _read_n(sock, buf, n)
                if not ok:
                    return
                req.body, buf = buf[:n], buf[n:]
            with self._lock:
                self.requests.append(req)
            out = self.respond(req)
            if out is CLOSE:
                return
            if isinstance(out, (bytes, bytearray)):
                sock.sendall(out)
                if b"connection: close" in out.split(b"\r\n\r\n", 1)[0].lower():
                    return
                continue
            status, headers_out, body = out
            head = f"HTTP/1.1 {status} X\r\n"
            lower = {k.lower() for k in headers_out}
            for k, v in headers_out.items():
                head += f"{k}: {v}\r\n"
            if "content-length" not in lower and "transfer-encoding" not in lower:
                head += f"content-length: {len(body)}\r\n"
            head += f"x-backend: {self.name}\r\n\r\n"
            sock.sendall(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            if (req.header("connection") or "").lower() == "close":
                return


def http_request(port, raw, host=LOOPBACK, timeout=5.0):
    """Sends raw bytes, reads until the server closes or `timeout`; returns the bytes."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(raw)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def http_config(listen_port, backends, routes=None, admin_port=None, http_extra="",
                listener_extra="", top_extra="", workers=2, drain="2s"):
    """YAML for one `mode: http` listener `web`.

    backends: {name: {"servers": [addr | (name, addr)], "extra": "yaml lines"}}
    routes: YAML text of the `routes:` list items (unindented); None = `backend:` the first
    backend. http_extra: lines of the listener's `http:` section (unindented)."""
    def indent(text, n):
        if not text:
            return ""
        return "".join(" " * n + ln + "\n" for ln in text.strip("\n").splitlines())

    text = f"workers: {workers}\n"
    text += f"timeouts: {{ connect: 1s, idle: 1m, drain: {drain} }}\n"
    if admin_port:
        text += f"admin: {{ listen: {LOOPBACK}:{admin_port} }}\n"
    text += indent(top_extra, 0)
    text += "listeners:\n  - name: web\n"
    text += f'    listen: "{LOOPBACK}:{listen_port}"\n    mode: http\n'
    if routes is None:
        text += f"    backend: {next(iter(backends))}\n"
    else:
        text += "    routes:\n" + indent(routes, 6)
    if http_extra:
        text += "    http:\n" + indent(http_extra, 6)
    text += indent(listener_extra, 4)
    text += "backends:\n"
    for name, b in backends.items():
        text += f"  {name}:\n"
        text += indent(b.get("extra", ""), 4)
        text += "    servers:\n"
        for s in b["servers"]:
            if isinstance(s, tuple):
                text += f'      - {{ name: {s[0]}, address: "{s[1]}" }}\n'
            else:
                text += f'      - "{s}"\n'
    return text


def parse_response(data):
    """Splits raw bytes into a list of (status, headers dict (lowercase), body) for every
    complete response in them (Content-Length or chunked framing; no body for 1xx/204/304
    and for HEAD is not known here: pass such responses one at a time)."""
    out = []
    while data:
        if b"\r\n\r\n" not in data:
            break
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        body = b""
        if status < 200 or status in (204, 304):
            pass
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body, data = data[:n], data[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line, data = data.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    _, data = data.split(b"\r\n", 1) if not data.startswith(b"\r\n") else (b"", data[2:])
                    break
                body += data[:size]
                data = data[size + 2:]
        else:
            body, data = data, b""
        out.append((status, headers, body))
    return out
