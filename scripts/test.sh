#!/usr/bin/env bash
# The one test command (README "Run the tests"): installs the software Vulkan driver (Mesa's
# lavapipe) when no Vulkan loader/driver is present, then runs the whole test suite with GPU
# tests required to find an adapter (MEMPLAN_REQUIRE_GPU=1: they fail instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."

have_vulkan_driver() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' &&
    ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1
}

if ! have_vulkan_driver; then
  echo "test.sh: no Vulkan driver found; installing Mesa's software driver (lavapipe)" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# The browser test (tests/web.rs) drives the web page in Debian's Chromium over chromedriver;
# with MEMPLAN_REQUIRE_BROWSER=1 a missing browser fails it instead of skipping it.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "test.sh: installing Debian's chromium and chromium-driver for the browser test" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
export MEMPLAN_REQUIRE_BROWSER=1

export MEMPLAN_REQUIRE_GPU=1
export NODEVICE_SELECT=1
cargo test --all-targets "$@"
cargo test --doc

# The Python package: built from this checkout into its own virtual environment (maturin,
# release), then its tests compare it with the CLI built above.
VENV=target/py-venv
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    echo "test.sh: installing python3-venv" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip maturin pytest
"$VENV/bin/python" -m pip install --quiet --no-build-isolation .
MEMPLAN_BIN="$PWD/target/debug/memplan" "$VENV/bin/python" -m pytest -q python/tests
