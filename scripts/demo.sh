#!/usr/bin/env bash
# The main job on a fresh machine: installs what the demo needs, builds
# edgemob in release mode and runs `edgemob-lab demo` (the paper's
# experiment: 50 handovers of a video download between two eNodeB-Clouds,
# Table I, Fig. 11 and Fig. 12 in ./edgemob-demo). Arguments go to
# `edgemob-lab demo`; see `target/release/edgemob-lab demo --help`. Needs
# root (network namespaces, TCP_REPAIR).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "edgemob-lab demo needs root (network namespaces, TCP_REPAIR): run it as root" >&2
  exit 1
fi
bash scripts/install-deps.sh --demo
# The researchers' edgemob-lab runs its agents from the operators' edgemob
# and its services from edgemob-video-server, all three side by side.
cargo build --release --locked -p edgemob-agent -p edgemob-eval -p edgemob-video-server
exec target/release/edgemob-lab demo "$@"
