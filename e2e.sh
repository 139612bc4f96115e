#!/usr/bin/env bash
# The end-to-end tier: the whole integration suite against Apache Kafka itself
# (4.x, KRaft, assembled from Maven Central jars by .ci/kafka), both consumer
# group protocols, then what only a real cluster shows: a Go peer (kafka-go as Go
# ekafka configures it, built from tests/go_peer), SASL, TLS and ACLs on
# the same broker, and brokers killed on a 3-broker cluster (under writes, a
# consumer server, every admin operation, and a rolling restart).
#
#   ./e2e.sh                          # the whole tier
#   ./e2e.sh --test consumer_group    # any cargo test arguments, against the broker
#   ./e2e.sh --bench producer_throughput   # benches (all when none is named), against it
#
# Needs Java 17+ and Maven (the jars are fetched once into ~/.cache/ekafka), and
# Go (kafka-go comes from the Go module proxy once, into Go's module cache).
# Every broker it or a test starts lives under one run directory; the trap stops
# them all and removes it however the run ends: success, a failed test, Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=.ci/run-dir
. .ci/run-dir e2e

# One single-node cluster (broker and controller in one JVM) for the suite, with
# SASL, TLS and StandardAuthorizer listeners beside its PLAINTEXT one.
.ci/kafka start "$RUN_DIR/suite" --secure
export EKAFKA_TEST_KAFKA=$RUN_DIR/suite
EKAFKA_TEST_BROKERS=$(sed -n 's/^PLAINTEXT=//p' "$RUN_DIR/suite/cluster.env")
export EKAFKA_TEST_BROKERS
echo "== Apache Kafka on $EKAFKA_TEST_BROKERS"

# ./e2e.sh --bench [NAME...]: the benches (all, or those named) on this broker.
if [ "${1:-}" = "--bench" ]; then
  shift
  if [ "$#" -eq 0 ]; then
    cargo bench
  fi
  for bench in "$@"; do
    cargo bench --bench "$bench"
  done
  exit
fi

if [ "$#" -gt 0 ]; then
  cargo test --no-fail-fast "$@"
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

# Every test file; those that need Kafka-only features are run below.
stage "the suite on Apache Kafka (classic group protocol)" cargo test --no-fail-fast --tests
stage "consumer groups under KIP-848 (group.protocol = consumer)" \
  env EKAFKA_TEST_GROUP_PROTOCOL=consumer cargo test --no-fail-fast \
  --test consumer_group --test rebalance --test consumer --test server \
  --test server_failures --test memory --test concurrency --test retry_topics \
  --test exactly_once --test typed_messages --test batch_handler
stage "admin API, delay topics made by a server, fenced producers, exactly once across SIGKILL" \
  cargo test --no-fail-fast --test admin --test retry_topics --test transactions \
  --test exactly_once -- --include-ignored
stage "side by side with Go ekafka's engine (kafka-go): its messages, key placement, a group moved both ways" \
  cargo test --no-fail-fast --test go_peer -- --include-ignored
stage "security: SASL, TLS, ACLs" cargo test --no-fail-fast --test security -- --include-ignored
stage "memcheck: transactions, exactly once and the group admin under valgrind" .ci/memcheck --kafka
# One at a time: each test runs a 3-broker cluster of its own.
stage "broker loss on 3 brokers" \
  cargo test --no-fail-fast --test broker_loss -- --include-ignored --test-threads=1
stage "every admin operation while brokers are killed and restarted (3 brokers)" \
  cargo test --no-fail-fast --test admin_churn -- --include-ignored
stage "a rolling restart right after a coordinator kill (classic protocol)" \
  cargo test --no-fail-fast --test rolling_restart -- --include-ignored
stage "a rolling restart right after a coordinator kill (KIP-848)" \
  env EKAFKA_TEST_GROUP_PROTOCOL=consumer cargo test --no-fail-fast --test rolling_restart -- --include-ignored

if [ "${#failed[@]}" -gt 0 ]; then
  echo "== e2e FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== e2e passed"
