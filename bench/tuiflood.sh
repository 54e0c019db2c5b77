#!/bin/sh
# tuiflood: how the TUI holds up under a log flood.
#
# Runs BenchmarkLogFlood (tui/bench_test.go): the real UI (renderer
# included, output counted and discarded) over a real engine and journal,
# while a shell step prints RATE lines a second for SECS seconds; a prober
# presses a key (F) every 20 ms and times each to the frame that shows it.
# It prints key latency idle and under flood, lines/s journaled, events/s
# reaching the UI, peak heap and terminal output.
#
#   bench/tuiflood.sh            # 50000 lines/s for 5 s
#   RATE=200000 SECS=10 bench/tuiflood.sh
set -eu
cd "$(dirname "$0")/.."
export GOFLAGS=-mod=mod
DECANT_FLOOD_RATE="${RATE:-50000}" DECANT_FLOOD_SECS="${SECS:-5}" \
	exec go test ./tui -run '^$' -bench LogFlood -benchtime 1x -count 1 -v
