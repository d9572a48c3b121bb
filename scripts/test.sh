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

export MEMPLAN_REQUIRE_GPU=1
export NODEVICE_SELECT=1
cargo test --all-targets "$@"
cargo test --doc
