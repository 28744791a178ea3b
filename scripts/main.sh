#!/bin/sh
# The main job: set up, build optimised, and run the fork-heavy simulation
# (fork, COW faults, exit over several threads), printing what happened.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
cmake --preset release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target fork_sim >/dev/null
[ $# -gt 0 ] || set -- 4 50 4096
./build/release/examples/fork_sim "$@"
