#!/usr/bin/env bash
# Installs, idempotently, ns-3's Python bindings and edgemob's ns-3 bridge:
#   * a virtual environment at $EDGEMOB_NS3_VENV (default /opt/edgemob/ns3-venv)
#     with ns3==3.44.post0 (LENA included), maturin and pytest, from PyPI;
#   * the edgemob_ns3 extension (simulator-glue/python), built with maturin
#     into that environment (rebuilt only when its sources changed).
# The venv path must not contain "test": the ns3 wheel's library loader
# skips every library whose path contains that substring.
# Used by scripts/install-deps.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${EDGEMOB_NS3_VENV:-/opt/edgemob/ns3-venv}"
PYTHON="${EDGEMOB_NS3_BASE_PYTHON:-python3}"
NS3_VERSION="3.44.post0"

case "$VENV" in
  *test*)
    echo "edgemob: EDGEMOB_NS3_VENV=$VENV contains \"test\"; ns-3's loader would skip its libraries" >&2
    exit 1 ;;
esac

started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "edgemob: creating $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

have() { "$VENV/bin/python" -m pip show "$1" 2>/dev/null | awk '/^Version:/ {print $2}'; }
if [ "$(have ns3)" != "$NS3_VERSION" ] || [ -z "$(have maturin)" ] || [ -z "$(have pytest)" ]; then
  echo "edgemob: installing ns3==$NS3_VERSION, maturin and pytest into $VENV (about 70 MB)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ns3==$NS3_VERSION" "maturin>=1.7,<2" "pytest>=7"
fi

# The bridge: rebuild when any of its inputs is newer than the installed module.
stamp="$VENV/.edgemob_ns3.stamp"
inputs=(simulator-glue/python/src simulator-glue/python/pysrc simulator-glue/python/Cargo.toml simulator-glue/python/pyproject.toml simulator-glue/src simulator-glue/Cargo.toml paas-api Cargo.toml Cargo.lock)
if [ ! -f "$stamp" ] || [ -n "$(find "${inputs[@]}" -newer "$stamp" -type f -print -quit 2>/dev/null)" ] \
   || ! "$VENV/bin/python" -c "import edgemob_ns3" >/dev/null 2>&1; then
  echo "edgemob: building the edgemob_ns3 bridge into $VENV"
  wheels="$(mktemp -d)"
  # The dev profile shares the workspace's build (dependencies are optimised
  # there); the wheel is installed as a copy, not linked to this checkout.
  "$VENV/bin/maturin" build --quiet --locked --profile dev \
    --manifest-path simulator-glue/python/Cargo.toml \
    --interpreter "$VENV/bin/python" --out "$wheels"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps "$wheels"/edgemob_ns3-*.whl
  rm -rf "$wheels"
  touch "$stamp"
fi
"$VENV/bin/python" -c "import edgemob_ns3, sys; print('edgemob: edgemob_ns3', edgemob_ns3.__version__, 'in', sys.prefix)"
echo "edgemob: ns-3 environment ready in $(( $(date +%s) - started )) s: $VENV/bin/python"
