#!/usr/bin/env bash
# The soak tier: a fleet under churn on Apache Kafka for minutes (tests/soak/).
# Three brokers and a 12-partition topic; a producer process writing 2,000
# keyed messages a second with acks = all; three consumer-server processes in
# one group. A broker is SIGKILLed and restarted every minute, the processes
# are restarted one at a time every 90 s (one in four with SIGKILL), and a
# poison message comes halfway. At the end every guarantee is checked and the
# figures printed: rates, duplicates, waits, unowned time per restart, memory
# and open files of each process.
#
#   ./soak.sh                                  # 3 minutes, classic protocol, dynamic members
#   ./soak.sh --minutes 30 --static            # members with instanceID (static membership)
#   ./soak.sh --protocol consumer              # KIP-848
#
# Needs Java 17+ and Maven (the jars are fetched once into ~/.cache/ekafka).
set -euo pipefail
cd "$(dirname "$0")"

minutes=3
static=0
protocol=classic
while [ "$#" -gt 0 ]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --static) static=1; shift ;;
    --protocol) protocol=$2; shift 2 ;;
    *) echo "usage: $0 [--minutes N] [--static] [--protocol classic|consumer]" >&2; exit 2 ;;
  esac
done

# shellcheck source=.ci/run-dir
. .ci/run-dir soak

echo "== soak: $minutes minutes, $protocol protocol, static members: $static"
EKAFKA_SOAK_MINUTES=$minutes EKAFKA_SOAK_STATIC=$static EKAFKA_TEST_GROUP_PROTOCOL=$protocol \
  cargo test --test soak -- --include-ignored
