#!/usr/bin/env bash
# Runs Lanai's whole test suite. Installs (idempotently) the real peers the tests
# talk to: HAProxy and nginx as references, keepalived as VRRP peer, iproute2 for
# network namespaces, busybox (udhcpc/udhcpd) for the network service's DHCP test,
# Debian's Chromium for the console's browser tests (driven
# by playwright-core from npm). Needs root for apt and namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(haproxy nginx-light keepalived iproute2 busybox-static curl openssl procps psmisc tshark chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo test --locked "$@"

# The console in a real browser (needs the debug `lanai` built by cargo test).
npm ci --prefix tests/browser --no-audit --no-fund --silent
(cd tests/browser && node --test --test-concurrency=1)
