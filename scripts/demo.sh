#!/usr/bin/env bash
# The main job on a fresh machine: installs what the demo needs, builds
# edgemob in release mode and runs `edgemob demo` (the paper's experiment:
# 50 handovers of a video download between two eNodeB-Clouds, Table I,
# Fig. 11 and Fig. 12 in ./edgemob-demo). Arguments go to `edgemob demo`;
# see `target/release/edgemob demo --help`. Needs root (network namespaces,
# TCP_REPAIR).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "edgemob demo needs root (network namespaces, TCP_REPAIR): run it as root" >&2
  exit 1
fi
bash scripts/install-deps.sh --demo
cargo build --release --locked -p edgemob-agent -p edgemob-video-server
exec target/release/edgemob demo "$@"
