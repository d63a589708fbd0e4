#!/usr/bin/env bash
# Installs what tutti needs to build and test, from Debian 12 packages only.
# Idempotent: packages already present are not fetched again.
#   scripts/deps.sh            build + run + test dependencies
#   scripts/deps.sh --armhf    also the Bela (armhf) cross toolchain and qemu
set -euo pipefail

want=(build-essential cmake pkg-config libuv1-dev libnng-dev libsodium-dev liblo-dev liblo-tools
      clang libclang-rt-14-dev python3 file
      supercollider-server supercollider-dev jackd2 ruby sonic-pi-server sonic-pi-samples
      gnuplot-nox nanomsg-utils dpkg-dev python3-liblo ableton-link-dev ableton-link-utils tmux)
armhf=(gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user
       libuv1-dev:armhf libnng-dev:armhf libsodium-dev:armhf libstdc++6:armhf
       liblo7:armhf) # with liblo-dev's headers: liblo-dev is not Multi-Arch

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

missing() {
    local out=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
    done
    echo "${out[@]:-}"
}

need=$(missing "${want[@]}")
if [ "${1:-}" = "--armhf" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx armhf; then
        $sudo dpkg --add-architecture armhf
        need="$need ${armhf[*]}"
        updated=0
    else
        need="$need $(missing "${armhf[@]}")"
    fi
fi
need=$(echo $need)
if [ -n "$need" ]; then
    echo "tutti: installing Debian packages: $need"
    # A mirror caught mid-sync fails `update` for one index; the lists already
    # there usually still have what is needed, so try the install regardless.
    $sudo apt-get update -qq || echo "tutti: apt-get update reported errors; installing anyway"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need >/dev/null
fi
