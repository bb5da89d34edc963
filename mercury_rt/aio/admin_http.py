"""A node's admin interface: /metrics, /healthz, /readyz and /status over HTTP.

Why a thread and the standard library's WSGI server, with prometheus_client's WSGI app
for /metrics: HTTP parsing is left to code that has been parsing it for decades, no
dependency is added (prometheus_client is already one), and the server never runs on
the node's event loop, so a scrape cannot delay a request and a stuck loop is seen as
such (/healthz asks the loop to answer within LOOP_TIMEOUT and reports 503 if it does
not). Every read of node state is handed to the loop (`call_soon_threadsafe`) and comes
back as a frozen snapshot (aio/node_status.py, aio/node_collector.py), so the node's
state is only ever touched by its own loop.

Bound to 127.0.0.1 unless configured otherwise; with a token, every request must carry
`Authorization: Bearer TOKEN` (compared in constant time). The node config refuses a
non-loopback address without a token (mercury_rt/config/admin.py). At most
MAX_CONCURRENT requests are served at once and each connection times out after
REQUEST_TIMEOUT seconds for the whole request: an idle or slow client cannot pile up
threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIEnvironment

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app

from mercury_rt.aio.node_collector import NodeCollector, sample_node
from mercury_rt.aio.node_status import node_status, readiness
from mercury_rt.aio.node_view import ObservedNode
from mercury_rt.core.transport import Addr

LOOP_TIMEOUT = 2.0
"""Seconds the admin thread waits for the event loop before answering 503."""
MAX_CONCURRENT = 8
REQUEST_TIMEOUT = 10.0
_log = structlog.get_logger("mercury_rt.admin")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """Where the admin interface listens and the token it requires (None: no token, only
    allowed on a loopback address). `address_file`, if set, receives the bound address
    as JSON while the node runs, so `mercury-rt node status` finds an ephemeral port."""

    host: str = "127.0.0.1"
    port: int = 0
    token: bytes | None = None
    address_file: Path | None = None


class LoopUnavailableError(Exception):
    """The node's event loop did not answer in time, or is closed."""


class AdminServer:
    """The admin HTTP server of one node. `start()` on the node's loop; `await stop()`."""

    def __init__(self, node: ObservedNode, settings: AdminSettings) -> None:
        self._node = node
        self.settings = settings
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(lambda: self._on_loop(lambda: sample_node(node))))
        self._metrics = make_wsgi_app(self.registry)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> Addr:
        """The bound (host, port)."""
        assert self._server is not None, "the admin server has not started"
        host, port = self._server.server_address[:2]
        return (str(host), int(port))

    @property
    def url(self) -> str:
        """http://host:port of the bound server."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Bind (OSError if the address is taken) and serve from a daemon thread."""
        server_class = _Server6 if ":" in self.settings.host else _Server
        self._server = server_class((self.settings.host, self.settings.port), _Handler)
        self._server.set_app(self._app)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="mercury-admin")
        self._thread.start()
        self._write_address()
        _log.info("admin_listening", url=self.url, token=self.settings.token is not None)

    async def stop(self) -> None:
        """Stop serving and free the port (the loop keeps running meanwhile, so requests
        in flight that wait for it finish)."""
        server, self._server = self._server, None
        if server is None:
            return
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        self._remove_address()

    # ----- requests (admin thread) -------------------------------------------------------

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return _send(start_response, "405 Method Not Allowed", b"only GET\n",
                         [("Allow", "GET")])
        if not self._authorized(str(environ.get("HTTP_AUTHORIZATION", ""))):
            return _send(start_response, "401 Unauthorized", b"a bearer token is required\n",
                         [("WWW-Authenticate", 'Bearer realm="mercury-rt admin"')])
        try:
            return self._route(str(environ.get("PATH_INFO", "")), environ, start_response)
        except LoopUnavailableError as exc:
            return _send(start_response, "503 Service Unavailable", f"{exc}\n".encode())

    def _route(self, path: str, environ: WSGIEnvironment,
               start_response: StartResponse) -> Iterable[bytes]:
        node = self._node
        if path == "/metrics":
            return list(self._metrics(environ, start_response))
        if path == "/healthz":
            self._on_loop(lambda: None)
            return _send(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            ready = self._on_loop(lambda: readiness(node))
            status = "200 OK" if ready.ready else "503 Service Unavailable"
            return _json(start_response, status, ready.to_json())
        if path == "/status":
            report = self._on_loop(lambda: node_status(
                node, self._loop.time(), self._loop.time() - self._started))
            return _json(start_response, "200 OK", report.to_json())
        return _send(start_response, "404 Not Found",
                     b"not found: try /metrics, /healthz, /readyz or /status\n")

    def _authorized(self, header: str) -> bool:
        token = self.settings.token
        if token is None:
            return True
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("latin-1", "replace"), token)

    def _on_loop(self, read: Callable[[], T]) -> T:
        """Run `read` on the node's event loop and return its result (admin thread)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(read())
                except Exception as exc:
                    future.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:
            raise LoopUnavailableError("the node's event loop is closed") from None
        try:
            return future.result(LOOP_TIMEOUT)
        except TimeoutError:
            future.cancel()
            raise LoopUnavailableError(f"the node's event loop did not answer within "
                                  f"{LOOP_TIMEOUT} s") from None

    # ----- the address file --------------------------------------------------------------

    def _write_address(self) -> None:
        path = self.settings.address_file
        if path is None:
            return
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(json.dumps({"url": self.url, "pid": os.getpid()}) + "\n",
                        encoding="utf-8")
        os.replace(temp, path)

    def _remove_address(self) -> None:
        path = self.settings.address_file
        if path is not None:
            path.unlink(missing_ok=True)


def _send(start_response: StartResponse, status: str, body: bytes,
          headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


def _json(start_response: StartResponse, status: str, doc: dict[str, Any]) -> list[bytes]:
    body = json.dumps(doc, sort_keys=True).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """A threading WSGI server that bounds its concurrent requests and skips the reverse
    DNS lookup HTTPServer does at bind (a slow resolver would delay the node's start)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int],
                 handler: type[WSGIRequestHandler]) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        super().__init__(address, handler)

    def server_bind(self) -> None:
        """Bind, and set what the WSGI environment needs, without getfqdn."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread if a slot is free; otherwise close the connection at once."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    """No access log: a node's stderr is its operator's console, and a scraper polling
    every few seconds would fill it (the metrics count what matters)."""

    timeout = REQUEST_TIMEOUT

    def handle(self) -> None:
        """The whole request within REQUEST_TIMEOUT: the socket timeout alone restarts with
        every byte, so a client trickling its headers could hold a slot for ever."""
        deadline = threading.Timer(REQUEST_TIMEOUT, self._cut)
        deadline.start()
        try:
            super().handle()
        finally:
            deadline.cancel()

    def _cut(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing per request."""
