#!/usr/bin/env bash
# Benchmark decant's mysql.copy against mysqldump | ssh | mysql and
# mydumper -> ssh -> myloader on the same ~1 GiB dataset, in one run, and
# mysql.verify against pt-table-checksum. Pass -scale 4 for ~4 GiB.
# The lab and its dataset are kept in /tmp/decant-bench-lab for the next
# run; add -down to stop the lab at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS=-mod=mod
exec go run ./bench/mysqlcopy "$@"
