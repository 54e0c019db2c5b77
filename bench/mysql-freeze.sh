#!/usr/bin/env bash
# A live migration under a bounded writer (100 writes/s, every committed id
# logged): capture, copy, catch-up rounds, freeze (read_only), final
# catch-up, verify. Reports the freeze window and checks every committed
# write is on the target. Shares the lab of bench/mysql-copy.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-mod=mod
exec go run ./bench/mysqlfreeze "$@"
