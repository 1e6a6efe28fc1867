#!/usr/bin/env bash
# Real Redis services for the tests and CI: one standalone server and one 3-node cluster on
# loopback. `start` installs redis-server from Debian's packages when absent and prints the
# environment the tests read; `stop` shuts everything down.
#   scripts/redis-services.sh start   ->  export lines for HUGECTR2ONNX_REDIS_URL(_CLUSTER)
#   scripts/redis-services.sh stop
#   scripts/redis-services.sh install  (only the packages; make test runs it)
set -euo pipefail

DIR=${REDIS_SERVICES_DIR:-/tmp/hugectr2onnx-redis-services}
STANDALONE_PORT=${REDIS_STANDALONE_PORT:-16390}
CLUSTER_PORTS=(${REDIS_CLUSTER_PORTS:-17101 17102 17103})

install() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  echo "redis-services: installing redis-server from Debian's packages" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >&2
}

serve() {  # port [extra redis-server options...]
  local port=$1; shift
  mkdir -p "$DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 --protected-mode no --save "" \
    --appendonly no --dir "$DIR/$port" --daemonize yes --pidfile "$DIR/$port/redis.pid" \
    --logfile "$DIR/$port/redis.log" "$@"
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "redis-services: redis-server on port $port did not start (see $DIR/$port/redis.log)" >&2
  exit 1
}

start() {
  install
  stop >/dev/null 2>&1 || true
  serve "$STANDALONE_PORT"
  local nodes=()
  for p in "${CLUSTER_PORTS[@]}"; do
    serve "$p" --cluster-enabled yes --cluster-config-file "$DIR/$p/nodes.conf" \
      --cluster-node-timeout 2000
    nodes+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/cluster.log"
  for p in "${CLUSTER_PORTS[@]}"; do  # every node must see the whole cluster
    for _ in $(seq 200); do
      redis-cli -p "$p" cluster info | grep -q cluster_state:ok && break
      sleep 0.1
    done
  done
  echo "export HUGECTR2ONNX_REDIS_URL=redis://127.0.0.1:$STANDALONE_PORT"
  echo "export HUGECTR2ONNX_REDIS_CLUSTER_URL=redis://127.0.0.1:${CLUSTER_PORTS[0]}"
}

stop() {
  for port in "$STANDALONE_PORT" "${CLUSTER_PORTS[@]}"; do
    if [ -f "$DIR/$port/redis.pid" ]; then
      redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$DIR/$port/redis.pid")" 2>/dev/null || true
    fi
  done
  rm -rf "$DIR"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
