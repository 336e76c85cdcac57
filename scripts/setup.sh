#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: the system packages the native addon
# builds against, the npm packages, and the build (npm run build: the addon and the tests'
# attack addon with node-gyp, then TypeScript). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# libseccomp and libcap headers for the sandbox; a C++ toolchain and python3 for node-gyp;
# nftables for the opt-in network (sandbox.network) and iproute2 for its tests' namespaces.
packages=(libseccomp-dev libcap-dev g++ make python3 nftables iproute2)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
npm run build
echo "setup: done (node $(node --version))"
