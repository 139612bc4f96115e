#!/usr/bin/env bash
# The end-to-end tier: the integration scenarios against a real broker process,
# tansu 0.6.0, instead of the embedded cluster.
#
#   ./e2e.sh                 # every scenario file
#   ./e2e.sh --test server   # one of them (any cargo test arguments)
#
# Installs tansu when it is missing (about 20 minutes on 2 cores, once; the binary
# is kept in ~/.cargo/bin), starts it on a free loopback port with in-memory
# storage, runs the suite with EKAFKA_TEST_BROKERS pointing at it, and stops it
# however the run ends.
set -euo pipefail
cd "$(dirname "$0")"

TANSU_VERSION=0.6.0
if ! tansu --version 2>/dev/null | grep -qF "$TANSU_VERSION"; then
  echo "== installing tansu $TANSU_VERSION (first run only)"
  cargo install "tansu@$TANSU_VERSION" --locked --features dynostore,libsql
fi

# A free loopback port: the first that nothing answers on.
port=""
for candidate in $(seq 19092 19192); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port=$candidate
    break
  fi
done
if [ -z "$port" ]; then
  echo "no free port in 19092-19192" >&2
  exit 1
fi

log=$(mktemp -t tansu-XXXXXX.log)
tansu broker \
  --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  >"$log" 2>&1 &
broker=$!
stop_broker() {
  kill "$broker" 2>/dev/null || true
  wait "$broker" 2>/dev/null || true
}
trap stop_broker EXIT

# Wait (up to 30s) until it accepts connections.
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    break
  fi
  if ! kill -0 "$broker" 2>/dev/null; then
    echo "tansu exited at start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "== tansu $TANSU_VERSION on 127.0.0.1:$port (log: $log)"

export EKAFKA_TEST_BROKERS="127.0.0.1:$port"
if [ "$#" -gt 0 ]; then
  cargo test "$@"
else
  cargo test --test producer --test consumer --test consumer_group --test rebalance \
    --test server --test app --test interceptors
fi
