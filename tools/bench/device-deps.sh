# Sourced by the device-machine scripts (tools/bench/*.sh, backends/vulkan/h100-check.sh,
# tests/capability/device_check.sh) from the repository root. That machine may lack the Debian
# libraries the core builds against (cJSON, hwloc, PCRE2, utf8proc): .deps/debs (carried, ignored by
# git; fetched here with `apt-get download`, package list in tools/deps-debian.sh) is unpacked into
# .deps/root and found through pkg-config's sysroot and LD_LIBRARY_PATH.
if ! pkg-config --exists libcjson hwloc libpcre2-8 libutf8proc 2>/dev/null && [ -d .deps/debs ]; then
	mkdir -p .deps/root
	for f in .deps/debs/*.deb; do
		case "$f" in *libudev1*) ldconfig -p | grep -q 'libudev.so.1 ' && continue ;; esac
		dpkg -x "$f" .deps/root
	done
	export PKG_CONFIG_SYSROOT_DIR=$PWD/.deps/root
	export PKG_CONFIG_LIBDIR=$PWD/.deps/root/usr/lib/x86_64-linux-gnu/pkgconfig
	export LD_LIBRARY_PATH=$PWD/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	AWQ_DEVICE_DEPS=unpacked
fi
