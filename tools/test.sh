#!/bin/sh
# Build awqrun and run the whole test suite on a fresh Debian 12 machine (run as root): installs the
# Debian packages it needs, builds with -Werror (CUDA plugin for one architecture to stay fast), runs
# ctest, then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs ctest there.
# GPU tests print why they skip where no GPU is present; Vulkan tests run on Mesa's lavapipe.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps-debian.sh
jobs=$(nproc)
archs=${AWQ_CUDA_ARCHS:-90}

cmake -S . -B build -DAWQ_WERROR=ON -DAWQ_CUDA_ARCHS="$archs"
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

cmake -S . -B build-asan -DAWQ_WERROR=ON -DAWQ_SANITIZE=ON -DAWQ_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs")
