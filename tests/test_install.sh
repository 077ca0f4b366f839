#!/bin/sh
# The shared library exports only pcache_* under a SONAME, and
# `make install` gives a prefix a program can build against with pkg-config.
set -u
BUILD=${BUILD:-build}
fail=0
so=$BUILD/libpcache.so

extra=$(nm -D --defined-only "$so" | awk '{ print $3 }' | grep -v -e '^pcache_' -e '^PCACHE_0$')
if [ -n "$extra" ]; then
	echo "FAIL: symbols exported besides pcache_*:"; echo "$extra" | head; fail=1
fi
n=$(nm -D --defined-only "$so" | grep -c ' T pcache_')
[ "$n" -ge 20 ] || { echo "FAIL: only $n pcache_* functions exported"; fail=1; }
readelf -d "$so" | grep -q 'SONAME.*libpcache.so.0' || { echo "FAIL: no SONAME"; fail=1; }

command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: pkg-config not installed"; exit 77; }
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
make -s install PREFIX="$prefix" BUILD="$BUILD" >/dev/null || { echo "FAIL: make install"; exit 1; }
for f in include/pcache.h lib/libpcache.a lib/libpcache.so.0 lib/pkgconfig/pcache.pc bin/pcache; do
	[ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; fail=1; }
done
cat >"$prefix/t.c" <<'C'
#include <fcntl.h>
#include <pcache.h>
#include <string.h>
int main(void)
{
	struct pcache_config cfg;
	struct pcache *pc;
	char buf[6] = { 0 };
	int fd;

	pcache_config_init(&cfg);
	if (pcache_create(&cfg, &pc))
		return 1;
	fd = pcache_open(pc, "f", O_RDWR | O_CREAT, 0644);
	if (pcache_pwrite(fd, "hello", 5, 0) != 5 || pcache_pread(fd, buf, 5, 0) != 5)
		return 1;
	pcache_close(fd);
	return pcache_destroy(pc) || strcmp(buf, "hello");
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# Sanitizer builds need the runtime at link time too.
san=""
[ -n "${SANITIZE:-}" ] && san="-fsanitize=$SANITIZE"
if cc $san "$prefix/t.c" $(pkg-config --cflags --libs pcache) -Wl,-rpath,"$prefix/lib" -o "$prefix/t"; then
	"$prefix/t" || { echo "FAIL: program built with pkg-config did not run right"; fail=1; }
else
	echo "FAIL: could not build against the installed library"; fail=1
fi
[ $fail -eq 0 ] && echo "exports, SONAME and install: ok"
exit $fail
