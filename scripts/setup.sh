#!/usr/bin/env bash
# Installs every build and test dependency of qsweep from Debian 12 packages.
# Idempotent: packages already present are skipped, so a second call is fast.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libyaml-cpp-dev libtbb-dev libeigen3-dev libfmt-dev nlohmann-json3-dev
  libxxhash-dev libcli11-dev libcurl4-openssl-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsentencepiece-dev libpcre2-dev libzip-dev
  libginac-dev libcln-dev libicu-dev libcld2-dev
  libcpp-httplib-dev curl chromium
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi
