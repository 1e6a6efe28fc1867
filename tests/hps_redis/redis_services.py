"""Real redis-server processes on loopback for the tests (never a mock).

CI starts shared services with scripts/redis-services.sh and exports their URLs; without them
the tests start their own here. redis-server missing is a failure, not a skip: CI installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


def free_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue
    raise RuntimeError("no free loopback port pair")


def require_redis_server() -> str:
    exe = shutil.which("redis-server")
    if exe is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server/redis-cli not found: install Debian's redis-server "
                    "(scripts/redis-services.sh start does), the Redis tests need a real server",
                    pytrace=False)
    return exe


def ping(port: int) -> bool:
    return subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                          text=True).stdout.strip() == "PONG"


class RedisServer:
    """One redis-server child process; ``kill`` takes it down hard (SIGKILL)."""

    def __init__(self, directory, *, cluster: bool = False, tls: bool = False,
                 extra: tuple = ()):
        exe = require_redis_server()
        self.port = free_port()
        self.dir = directory / str(self.port)
        self.dir.mkdir(parents=True)
        ports = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        self.tls = tls
        args = [exe, *ports, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no", *extra]
        if cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited "
                                   f"({self.proc.returncode})")
            if self._listening():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    stop = kill


class RedisCluster:
    """``n`` cluster nodes, no replicas, all slots assigned."""

    def __init__(self, directory, n: int = 3):
        self.nodes = [RedisServer(directory, cluster=True) for _ in range(n)]
        out = subprocess.run(["redis-cli", "--cluster", "create",
                              *[f"127.0.0.1:{s.port}" for s in self.nodes],
                              "--cluster-replicas", "0", "--cluster-yes"],
                             capture_output=True, text=True)
        if out.returncode:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout[-500:]}"
                               f"{out.stderr[-500:]}")
        for _ in range(400):  # every node must see the whole cluster, not just the first
            if all("cluster_state:ok" in subprocess.run(
                    ["redis-cli", "-p", str(s.port), "cluster", "info"], capture_output=True,
                    text=True).stdout for s in self.nodes):
                return
            time.sleep(0.05)
        raise RuntimeError("the Redis cluster did not reach state ok")

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for s in self.nodes:
            s.stop()


def shared_url(env: str) -> str | None:
    """A running service named by CI's environment, if it answers."""
    url = os.environ.get(env)
    if not url:
        return None
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    return url if ping(port) else None
