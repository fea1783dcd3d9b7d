#!/usr/bin/env bash
# Installs, idempotently, every system package edgemob's tests and demo use.
# Safe to run again: it only installs what is missing.
#   --demo   only what `edgemob-lab demo` needs (iproute2, curl, tcpdump)
set -euo pipefail
demo_only=0
[ "${1:-}" = "--demo" ] && demo_only=1

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "edgemob: installing test dependencies needs root (apt-get); run as root or with sudo" >&2
    exit 1
  fi
}

# command -> Debian package that provides it
declare -A PKG=(
  [tshark]=tshark          # Wireshark's dissectors: oracle for MIH frames
  [text2pcap]=tshark
  [crit]=criu              # CRIU image tool: oracle for our CRIU-format images
  [nft]=nftables           # inspecting the network lock in tests
  [tcpdump]=tcpdump        # client-side captures (RST count, stall)
  [ip]=iproute2            # network namespaces, veth
  [curl]=curl              # the unmodified client
)

if [ "$demo_only" = 1 ]; then
  for cmd in tshark text2pcap crit nft; do unset "PKG[$cmd]"; done
fi

missing=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "edgemob: installing ${missing[*]}"
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$demo_only" = 0 ]; then
  bash "$(dirname "$0")/install-ns3.sh"   # ns-3 3.44 Python bindings + the edgemob_ns3 bridge (simulator-glue)
fi
