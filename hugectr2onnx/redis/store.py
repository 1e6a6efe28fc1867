"""Connections to a standalone Redis or a Redis Cluster, with typed errors and a retry budget.

Commands travel pre-encoded (resp.py) over redis-py's connections, so AUTH, TLS and cluster
topology are redis-py's; a request's commands go out as one pipeline per node.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import ServiceError, UsageError
from .resp import buffers

PASSWORD_ENV = "HUGECTR2ONNX_REDIS_PASSWORD"


@dataclass
class RedisOptions:
    """How to reach Redis (HPS's volatile_db fields in brackets). The password never prints."""

    username: str | None = None  # [user_name]
    password: str | None = field(default=None, repr=False)  # [password]
    tls: bool = False  # [enable_tls]; also implied by a rediss:// URL
    ca_certificate: str | None = None  # [tls_ca_certificate]: a file or a directory
    client_certificate: str | None = None  # [tls_client_certificate]
    client_key: str | None = None  # [tls_client_key]
    check_hostname: bool = True
    connect_timeout: float = 2.0  # seconds to open a connection
    timeout: float = 10.0  # seconds a reply may take
    retry_budget: float = 0.0  # seconds to keep retrying a failed request (0: fail at once)
    cluster: bool | None = None  # None: ask the server (INFO cluster)


def redact(url: str) -> str:
    """The URL without its password (user names stay: they help to find the account)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def split_model_url(url: str) -> tuple[str, str]:
    """``redis://HOST:PORT/MODEL`` -> (``redis://HOST:PORT``, MODEL)."""
    parts = urlsplit(url)
    model = parts.path.strip("/")
    if not model or "/" in model:
        raise UsageError(f"{redact(url)}: expected redis://HOST:PORT/MODEL (the HPS model name "
                         f"as the path)")
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, "")), model


class RedisStore:
    """One Redis deployment. ``exchange`` sends encoded commands, grouped by node, and returns
    the replies in order; failures become ServiceError naming the URL and the table."""

    def __init__(self, url: str, options: RedisOptions | None = None):
        try:
            import redis  # noqa: F401
        except ImportError:
            raise UsageError("Redis support needs the redis extra: pip install "
                             "'hugectr2onnx[redis]'") from None
        self.options = options or RedisOptions()
        self.url = url
        self.shown = redact(url)
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise UsageError(f"{self.shown}: the URL scheme must be redis:// or rediss://")
        if not parts.hostname:
            raise UsageError(f"{self.shown}: the URL has no host")
        self._host, self._port = parts.hostname, parts.port or 6379
        self._kw = self._client_kwargs(parts)
        self._cluster = None
        self._client = None
        self._pool = None
        self._sender_pool = None
        self._connect("connect")

    # ------------------------------------------------------------------ connection
    def _client_kwargs(self, parts) -> dict:
        o = self.options
        kw = {"socket_timeout": o.timeout, "socket_connect_timeout": o.connect_timeout,
              "protocol": 2,  # RESP2 reply shapes, as HPS (redis-plus-plus) reads them
              "retry": _no_retry(),  # our retry_budget decides
              "username": o.username or (unquote(parts.username) if parts.username else None),
              "password": (o.password or (unquote(parts.password) if parts.password else None)
                           or os.environ.get(PASSWORD_ENV))}
        if o.tls or parts.scheme == "rediss":
            ca = o.ca_certificate
            kw.update(ssl=True, ssl_certfile=o.client_certificate, ssl_keyfile=o.client_key,
                      ssl_check_hostname=o.check_hostname,
                      ssl_ca_certs=ca if ca and not os.path.isdir(ca) else None,
                      ssl_ca_path=ca if ca and os.path.isdir(ca) else None)
        return kw

    def _connect(self, what: str) -> None:
        import redis
        from redis.cluster import RedisCluster

        try:
            probe = redis.Redis(host=self._host, port=self._port, **self._kw)
            cluster = self.options.cluster
            if cluster is None:
                cluster = bool(probe.info("cluster").get("cluster_enabled"))
            if cluster:
                probe.close()
                self._cluster = RedisCluster(host=self._host, port=self._port, **self._kw)
            else:
                self._client = probe
        except redis.RedisError as e:
            raise self._error(e, what) from None

    @property
    def is_cluster(self) -> bool:
        return self._cluster is not None

    def client_for(self, name: bytes):
        """The redis-py client of the node that holds key ``name``."""
        if self._cluster is None:
            return self._client
        return self._cluster.get_node_from_key(name).redis_connection

    def _senders(self) -> ThreadPoolExecutor:
        if self._sender_pool is None:
            self._sender_pool = ThreadPoolExecutor(8, thread_name_prefix="hugectr2onnx-send")
        return self._sender_pool

    def close(self) -> None:
        if self._sender_pool is not None:
            self._sender_pool.shutdown()
        for c in (self._client, self._cluster):
            if c is not None:
                c.close()

    def _error(self, e: Exception, table: str | None) -> ServiceError:
        kind = type(e).__name__
        detail = " ".join(str(e).split()) or kind
        return ServiceError(f"Redis {kind}: {detail}", file=self.shown,
                            where=f"table {table}" if table else None)

    # ------------------------------------------------------------------ commands
    def exchange(self, commands: list[tuple[bytes, bytes]], table: str) -> list:
        """``commands``: (hash name, encoded command). Replies in the same order; one pipeline
        per node, nodes in parallel. Retries within ``retry_budget`` seconds, then raises."""
        import redis

        deadline = time.monotonic() + self.options.retry_budget
        delay = 0.05
        while True:
            try:
                return self._exchange_once(commands)
            except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError,
                    redis.exceptions.MovedError, redis.exceptions.AskError,
                    redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError,
                    redis.exceptions.BusyLoadingError, OSError) as e:
                if time.monotonic() + delay > deadline:
                    raise self._error(e, table) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                self._refresh()
            except redis.RedisError as e:
                raise self._error(e, table) from None

    def _refresh(self) -> None:
        try:
            if self._cluster is not None:
                self._cluster.nodes_manager.initialize()
        except Exception:  # the next attempt reports the failure
            pass

    def _exchange_once(self, commands: list[tuple[bytes, bytes]]) -> list:
        groups: dict[int, tuple[object, list[int]]] = {}
        for i, (name, _) in enumerate(commands):
            client = self.client_for(name)
            groups.setdefault(id(client), (client, []))[1].append(i)
        replies: list = [None] * len(commands)

        def run(group):
            client, idx = group
            for i, r in zip(idx, _pipeline(client, [commands[i][1] for i in idx])):
                replies[i] = r

        if len(groups) == 1:
            run(next(iter(groups.values())))
        else:
            with ThreadPoolExecutor(len(groups)) as pool:
                list(pool.map(run, groups.values()))
        return replies

    def submit(self, commands: list[tuple[bytes, bytes]]) -> "Pending":
        """Send ``commands`` now, read their replies later (``Pending.wait``), so the caller
        prepares the next request while Redis executes this one."""
        groups: dict[int, tuple[object, list[int]]] = {}
        for i, (name, _) in enumerate(commands):
            client = self.client_for(name)
            groups.setdefault(id(client), (client, []))[1].append(i)
        pending = Pending(commands)
        try:
            for client, idx in groups.values():
                pool = client.connection_pool
                pending.sent.append((pool, pool.get_connection(), idx))

            def send(entry):
                _, conn, idx = entry
                conn.send_packed_command(buffers(commands[i][1] for i in idx))

            if len(pending.sent) == 1:
                send(pending.sent[0])
            else:  # a blocking send per node would leave the other nodes idle meanwhile
                list(self._senders().map(send, pending.sent))
        except BaseException:
            pending.abandon()
            raise
        return pending

    def command(self, *args, table: str | None = None, key: bytes | None = None):
        """One ordinary command (routed by ``key`` on a cluster), with the same error handling."""
        import redis

        try:
            if self._cluster is None:
                return self._client.execute_command(*args)
            if key is not None:
                return self.client_for(key).execute_command(*args)
            return self._cluster.execute_command(*args)
        except redis.RedisError as e:
            raise self._error(e, table) from None

    def primaries(self) -> list:
        """A client per primary node (the one client when standalone)."""
        if self._cluster is None:
            return [self._client]
        return [n.redis_connection for n in self._cluster.get_primaries()]


class Pending:
    """Commands sent on their connections, replies not read yet."""

    def __init__(self, commands):
        self.commands = commands
        self.sent: list = []  # (pool, connection, command indices)

    def wait(self) -> list:
        replies: list = [None] * len(self.commands)
        try:
            while self.sent:
                pool, conn, idx = self.sent[0]
                for i in idx:
                    replies[i] = conn.read_response()
                self.sent.pop(0)
                pool.release(conn)
        except BaseException:
            self.abandon()
            raise
        return replies

    def abandon(self) -> None:
        for pool, conn, _ in self.sent:
            conn.disconnect()
            pool.release(conn)
        self.sent = []


def _no_retry():
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def _pipeline(client, payloads: list[bytes]) -> list:
    """Send ``payloads`` on one connection, then read one reply each; an error reply raises
    after the connection is dropped (its later replies are unread)."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command(buffers(payloads))
        return [conn.read_response() for _ in payloads]
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
