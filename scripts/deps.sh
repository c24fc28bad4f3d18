#!/bin/sh
# Installs the Debian/Ubuntu packages copystand needs, only those missing;
# uses sudo when not root.
#
#   scripts/deps.sh [--list] [run|test]
#
# run (the default): what building copystand and running it and its demo
# need (scripts/demo).  test: those and what only the tests use: the
# programs they check copystand's output with (openssl, zbarimg, gphoto2,
# exiftool, chromium, lua), the Entangle plugin's libraries and the Xvfb
# display its test draws on, the label reader's zbar and libdmtx
# (scripts/test).  --list prints the packages, one a line, and installs
# nothing.
set -eu

# libc6-dev and ca-certificates are only Recommended by gcc and libcurl,
# so --no-install-recommends would leave them out.
RUN="gcc libc6-dev meson ninja-build pkg-config python3 ca-certificates
libcurl4-openssl-dev libcjson-dev libexif-dev libgphoto2-dev
libsqlite3-dev libexpat1-dev libpcre2-dev libjpeg-dev zlib1g-dev"

TEST_ONLY="openssl
libzbar-dev libdmtx-dev zbar-tools
gphoto2
libpeas-dev libgtk-3-dev libglib2.0-dev xvfb
libimage-exiftool-perl
chromium
lua5.4"

usage() {
	echo "usage: scripts/deps.sh [--list] [run|test]" >&2
	exit 2
}

list=false
if [ "${1-}" = --list ]; then
	list=true
	shift
fi
[ $# -le 1 ] || usage
case "${1-run}" in
run) PACKAGES=$RUN ;;
test) PACKAGES="$RUN $TEST_ONLY" ;;
*) usage ;;
esac

if $list; then
	# shellcheck disable=SC2086
	printf '%s\n' $PACKAGES
	exit 0
fi

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "copystand: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
