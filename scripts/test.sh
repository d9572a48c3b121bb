#!/usr/bin/env bash
# The one test command (README "Run the tests"): installs the software Vulkan driver (Mesa's
# lavapipe) only when no Vulkan loader + driver is present, then runs the whole test suite with GPU
# tests required to find an adapter (MEMPLAN_REQUIRE_GPU=1: they fail instead of skipping).
# Runs as root, or as a user with sudo for the one-time install.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Vulkan loader (libvulkan.so.1) plus at least one installable client driver manifest (ICD JSON)
# in the loader's standard folders, or named by VK_DRIVER_FILES / VK_ICD_FILENAMES.
have_vulkan_loader() {
  ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' && return 0
  local d
  for d in /usr/lib /usr/lib64 /usr/local/lib /usr/lib/*-linux-gnu; do
    [ -e "$d/libvulkan.so.1" ] && return 0
  done
  return 1
}

have_vulkan_icd() {
  local f d
  local IFS=':'
  for f in ${VK_DRIVER_FILES:-} ${VK_ICD_FILENAMES:-}; do
    [ -f "$f" ] && return 0
  done
  IFS=' '
  for d in /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d /etc/vulkan/icd.d; do
    for f in "$d"/*.json; do
      [ -f "$f" ] && return 0
    done
  done
  return 1
}

have_vulkan_driver() { have_vulkan_loader && have_vulkan_icd; }

if ! have_vulkan_driver; then
  echo "test.sh: no Vulkan driver found; installing Mesa's software driver (lavapipe)" >&2
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
      SUDO=(sudo)
    else
      echo "test.sh: error: installing mesa-vulkan-drivers and libvulkan1 needs root or sudo" >&2
      echo "hint: run 'apt-get install mesa-vulkan-drivers libvulkan1' as root, then this script again" >&2
      exit 2
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Try the cached package lists first; refresh them only when the install cannot find the packages.
  if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get update -qq >/dev/null
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  if ! have_vulkan_driver; then
    echo "test.sh: error: the Vulkan driver is still missing after the install" >&2
    exit 2
  fi
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
# Mesa's device-select layer can hang enumerating devices in containers; lavapipe does not need it.
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
