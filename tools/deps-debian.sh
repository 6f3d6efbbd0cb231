#!/bin/sh
# Install every Debian package awqrun needs to build and test (run as root on Debian 12).
# One list, used by the README's commands and by CI.
set -e
export DEBIAN_FRONTEND=noninteractive
pkgs="build-essential cmake pkg-config git ca-certificates
  libcjson-dev libhwloc-dev libpcre2-dev libutf8proc-dev
  libvulkan-dev glslang-tools spirv-tools mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
  clang libclang-rt-14-dev valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
fi
