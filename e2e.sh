#!/usr/bin/env bash
# The end-to-end tier: the integration scenarios against a real broker process,
# tansu 0.6.0, instead of the embedded cluster; plus what only a real broker
# shows: SASL, and the broker process dying mid-stream.
#
#   ./e2e.sh                 # the whole tier
#   ./e2e.sh --test server   # any cargo test arguments, against one broker
#
# Builds the broker when it is missing (once; kept in ~/.cargo/bin and reused),
# starts brokers on free loopback ports, and stops them however the run ends.
set -euo pipefail
cd "$(dirname "$0")"

# tansu 0.6.0 from crates.io, built with SASL PLAIN (see .ci/tansu/Cargo.toml),
# installed as ekafka-tansu in ~/.cargo/bin. Built once (about 25 minutes on 2
# cores), then reused; its build directory is kept in ~/.cache.
TANSU_VERSION=0.6.0
if ! ekafka-tansu --version 2>/dev/null | grep -qF "$TANSU_VERSION"; then
  echo "== building tansu $TANSU_VERSION with SASL PLAIN (first run only)"
  CARGO_TARGET_DIR="$HOME/.cache/ekafka-tansu-target" \
    cargo install --path .ci/tansu --locked
fi
# Tests that start brokers of their own (SASL, broker restart) use this binary.
EKAFKA_TEST_TANSU=$(command -v ekafka-tansu)
export EKAFKA_TEST_TANSU

pids=()
dirs=()
stop_brokers() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for dir in "${dirs[@]}"; do
    rm -rf "$dir"
  done
}
trap stop_brokers EXIT

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_broker STORAGE: starts tansu on the first free port from 19092 and sets
# BROKER to its host:port.
start_broker() {
  local storage=$1 port="" candidate dir
  for candidate in $(seq 19092 19192); do
    if ! listening "$candidate"; then
      port=$candidate
      break
    fi
  done
  if [ -z "$port" ]; then
    echo "no free port in 19092-19192" >&2
    exit 1
  fi
  dir=$(mktemp -d -t ekafka-e2e-XXXXXX)
  dirs+=("$dir")
  (cd "$dir" && exec "$EKAFKA_TEST_TANSU" broker \
    --storage-engine "$storage" \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port") \
    >"$dir/tansu.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    if listening "$port"; then
      echo "== tansu $TANSU_VERSION ($storage) on 127.0.0.1:$port"
      BROKER="127.0.0.1:$port"
      return
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  echo "tansu did not start:" >&2
  cat "$dir/tansu.log" >&2
  exit 1
}

# The scenarios run on sqlite storage: tansu 0.6.0's memory:// engine serves no
# fetch that starts inside a record batch, so a consumer resuming mid-batch (a
# restart, a seek, a paused partition) would stall or skip.
start_broker sqlite://tansu.db
SCENARIOS=$BROKER

if [ "$#" -gt 0 ]; then
  EKAFKA_TEST_BROKERS=$SCENARIOS cargo test --no-fail-fast "$@"
  exit
fi

failed=()
stage() {
  local name=$1
  shift
  echo "== $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

# Every scenario file of the default suite. Compression is left to the memory
# broker below: with sqlite storage, tansu 0.6.0 fails to fetch snappy batches.
stage "scenarios on sqlite" env EKAFKA_TEST_BROKERS="$SCENARIOS" \
  cargo test --no-fail-fast --test producer --test consumer --test consumer_group \
  --test rebalance --test server --test app --test interceptors \
  -- --skip every_compression_codec_round_trips
stage "signals on sqlite" env EKAFKA_TEST_BROKERS="$SCENARIOS" cargo test --test app_signals

start_broker memory://tansu/
stage "producer scenarios, compression included, on memory" env EKAFKA_TEST_BROKERS="$BROKER" \
  cargo test --no-fail-fast --test producer

# Tests that start and kill brokers of their own; a plain `cargo test` skips them.
stage "SASL and broker restart" \
  cargo test --no-fail-fast --test sasl --test broker_restart -- --include-ignored

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== e2e FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== e2e passed"
