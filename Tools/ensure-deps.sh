#!/usr/bin/env bash
# Installs the system packages unetc builds against (json-c via pkg-config) when they are missing.
set -euo pipefail
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists json-c zlib; then
    exit 0
fi
echo "ensure-deps: installing libjson-c-dev, zlib1g-dev and pkg-config" >&2
sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libjson-c-dev zlib1g-dev pkg-config >/dev/null
pkg-config --exists json-c zlib
