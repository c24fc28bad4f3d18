#!/bin/sh
# `meson install` into a DESTDIR of its own, then the installed tree as a
# packager and a host program see it: the command, libcopystand (soname,
# nothing exported but the header's functions), the header, the pkg-config
# file, the man pages, and tests/host/tiny_host.c built with nothing but
# `pkg-config --cflags --libs copystand` and run on the installed library.
# TAP.  The build's paths, compiler and sanitizer flags come in the
# environment from tests/meson.build.
set -u

tmp=$(mktemp -d "${TMPDIR:-/tmp}/copystand-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
lib=$dest$LIBDIR
n=0

# The host must find nothing of this user's configuration, journal or
# station, nor a test server.
export HOME="$tmp/home"
mkdir "$HOME"
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR
for v in $(env | sed -n 's/^\(COPYSTAND_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds; its output is
# shown as TAP comments when it fails.
check() {
	what=$1
	shift
	n=$((n + 1))
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		sed 's/^/#   /' "$tmp/out"
	fi
}

# same DESCRIPTION GOT WANT
same() {
	n=$((n + 1))
	if [ "$2" = "$3" ]; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		printf '#   got:  %s\n#   want: %s\n' "$2" "$3"
	fi
}

if ! "$MESON" install -C "$BUILD_ROOT" --destdir "$dest" --no-rebuild --quiet \
	>"$tmp/out" 2>&1; then
	sed 's/^/# /' "$tmp/out"
	echo "Bail out! meson install failed: is all built? meson compile -C $BUILD_ROOT"
	exit 1
fi
echo "ok $((n += 1)) - meson install"

same "copystand --version" "$("$dest$BINDIR/copystand" --version 2>&1)" \
	"copystand $PROJECT_VERSION"

links() {
	test -f "$lib/libcopystand.so.$PROJECT_VERSION" &&
		test "$(readlink "$lib/libcopystand.so")" = libcopystand.so.1 &&
		test "$(readlink "$lib/libcopystand.so.1")" = "libcopystand.so.$PROJECT_VERSION"
}
check "libcopystand.so -> .so.1 -> .so.$PROJECT_VERSION" links
same "soname" "$(readelf -d "$lib/libcopystand.so.1" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" \
	libcopystand.so.1

# Exported: the functions declared in copystand.h, in version COPYSTAND_1,
# and nothing else (the version node itself aside).
nm -D --defined-only "$lib/libcopystand.so.1" |
	awk '$3 != "COPYSTAND_1" { print $3 }' | sort >"$tmp/exported"
sed -n 's/^[a-z].*[ *]\(copystand_[a-z_]*\)(.*/\1@@COPYSTAND_1/p' \
	"$SOURCE_ROOT/core/copystand.h" | sort >"$tmp/declared"
check "exports exactly the header's functions" diff "$tmp/declared" "$tmp/exported"

check "the header" cmp "$SOURCE_ROOT/core/copystand.h" "$dest$INCLUDEDIR/copystand.h"

# groff -ww -z prints every warning and nothing else.
renders() {
	test -f "$1" && groff -man -Tutf8 -ww -z "$1" 2>&1 | (! grep .)
}
for page in man1/copystand.1 man3/libcopystand.3; do
	if command -v groff >/dev/null; then
		check "$page renders without warnings" renders "$dest$MANDIR/$page"
	else
		check "$page installed" test -f "$dest$MANDIR/$page"
	fi
done

# copystand demo, the README's main job, from the installed tree: its
# stand-in and camera beside the command, found from its own folder.
check "the demo's stand-in is installed" \
	test -f "$dest$DATADIR/copystand/standin/standin.py" -a \
	-f "$dest$DATADIR/copystand/standin/fixture.json"
check "the demo's camera is installed" test -x "$dest$LIBEXECDIR/copystand/ptpip-camera"
check "the darktable script is installed" test -f "$dest$DATADIR/copystand/darktable/copystand.lua"
demo_runs() {
	"$dest$BINDIR/copystand" demo >"$tmp/demo" 2>&1 || { cat "$tmp/demo"; return 1; }
}
check "the installed copystand demo runs" demo_runs
uses_installed() {
	grep -F "($dest$DATADIR/copystand/standin/standin.py)" "$tmp/demo" &&
		grep -F "($dest$LIBEXECDIR/copystand/ptpip-camera)" "$tmp/demo" &&
		grep "^000000002 .*Perca fluviatilis .*000000002.jpg, 000000002.cr2" "$tmp/demo" ||
		{ cat "$tmp/demo"; return 1; }
}
check "with the installed stand-in and camera, to its table" uses_installed

# pkg-config as a host's build finds the installed package: through
# PKG_CONFIG_PATH, with every path it prints moved into the DESTDIR.
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
same "pkg-config --modversion" "$(pkg-config --modversion copystand 2>&1)" "$PROJECT_VERSION"
flags=$(pkg-config --cflags --libs copystand) || flags=
in_destdir() {
	for f in "-I$dest$INCLUDEDIR" "-L$lib" -lcopystand; do
		case " $flags " in *" $f "*) ;; *) echo "no $f in: $flags"; return 1 ;; esac
	done
}
check "pkg-config --cflags --libs point into the DESTDIR" in_destdir

# shellcheck disable=SC2086 # HOST_CC, HOST_CFLAGS and flags are word lists
check "tiny_host builds with pkg-config's flags only" \
	$HOST_CC $HOST_CFLAGS -std=c11 -Wall -Wextra -Wpedantic -Werror \
	"$SOURCE_ROOT/tests/host/tiny_host.c" -o "$tmp/tiny_host" $flags

export LD_LIBRARY_PATH="$lib"
loads_installed() {
	ldd "$tmp/tiny_host" | grep -F "libcopystand.so.1 => $lib/libcopystand.so.1"
}
check "tiny_host loads the installed library" loads_installed
check "tiny_host runs" "$tmp/tiny_host" "$tmp/no-such-capture.jpg"
sed -n 's/^submit /#   copystand_submit_to_running: /p' "$tmp/out"
same "tiny_host sees the library's version" "$(sed -n 's/^version //p' "$tmp/out")" \
	"$PROJECT_VERSION"

echo "1..$n"
