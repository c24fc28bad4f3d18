#!/bin/sh
# Installs the Debian/Ubuntu packages copystand needs to build and test,
# only those missing; uses sudo when not root.
set -eu

PACKAGES="gcc meson ninja-build pkg-config python3 curl openssl
libcurl4-openssl-dev libcjson-dev libexif-dev libgphoto2-dev
libsqlite3-dev libexpat1-dev libpcre2-dev libjpeg-dev zlib1g-dev
libzbar-dev libdmtx-dev zbar-tools
gphoto2
libpeas-dev libgtk-3-dev libglib2.0-dev xvfb
libimage-exiftool-perl
chromium
lua5.4"

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
