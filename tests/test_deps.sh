#!/bin/sh
# scripts/deps.sh's two sets: `run`, what scripts/demo installs, holds what
# building and running need and none of the test tool chain; `test`, what
# scripts/test installs, holds all of run and the tools.  --list installs
# nothing; every library meson.build requires maps to a package of run.
# TAP.  SOURCE_ROOT comes in the environment from tests/meson.build.
set -u

tmp=$(mktemp -d "${TMPDIR:-/tmp}/copystand-deps.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
deps=$SOURCE_ROOT/scripts/deps.sh
n=0

ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -s "$tmp/why" ] && sed 's/^/#   /' "$tmp/why"
	fi
	: >"$tmp/why"
}

# apt-get, sudo and dpkg-query that only say they were called: --list
# must ask for none of them.
mkdir "$tmp/bin"
for tool in apt-get sudo dpkg-query; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/called"\nexit 1\n' "$tool" "$tmp" >"$tmp/bin/$tool"
	chmod +x "$tmp/bin/$tool"
done
for set in run test; do
	PATH="$tmp/bin:$PATH" sh "$deps" --list "$set" >"$tmp/$set" 2>"$tmp/why"
	rc=$?
	[ -s "$tmp/called" ] && cat "$tmp/called" >>"$tmp/why"
	[ "$rc" = 0 ] && [ -s "$tmp/$set" ] && [ ! -s "$tmp/called" ]
	ok $? "--list $set prints packages and installs nothing"
	rm -f "$tmp/called"
done

# listed LIST PACKAGE: 0 when PACKAGE is a line of LIST.
listed() { grep -qxF "$2" "$tmp/$1"; }

# The test tool chain, and what only the tests build or run: none of it
# in run, all of it in test.
for p in chromium xvfb libimage-exiftool-perl lua5.4 libpeas-dev libgtk-3-dev \
	gphoto2 zbar-tools openssl; do
	! listed run "$p"
	ok $? "run leaves out $p"
	listed test "$p"
	ok $? "test has $p"
done

missing=$(grep -vxF -f "$tmp/test" "$tmp/run")
echo "$missing" >"$tmp/why"
[ -z "$missing" ]
ok $? "test has all of run"

# The C library's headers and the CA certificates copystand's HTTPS checks
# servers with are only Recommends, which apt-get --no-install-recommends
# leaves out.
for p in libc6-dev ca-certificates; do
	listed run "$p"
	ok $? "run has $p"
done

# scripts/demo and scripts/test beside a deps.sh that notes what it was
# asked for and fails, which stops them there.
mkdir -p "$tmp/tree/scripts"
printf '#!/bin/sh\necho "$*" >"%s/asked"\nexit 3\n' "$tmp" >"$tmp/tree/scripts/deps.sh"
for pair in demo:run test:test; do
	script=${pair%%:*}
	want=${pair#*:}
	cp "$SOURCE_ROOT/scripts/$script" "$tmp/tree/scripts/"
	rm -f "$tmp/asked"
	sh "$tmp/tree/scripts/$script" >"$tmp/why" 2>&1
	rc=$?
	asked=$(cat "$tmp/asked" 2>/dev/null) || asked="(not called)"
	echo "asked for: $asked; $script exited $rc" >>"$tmp/why"
	[ "$asked" = "$want" ] && [ "$rc" != 0 ]
	ok $? "scripts/$script installs the $want set and stops when that fails"
done

# Every library meson.build requires (a dependency() without required:)
# comes from a package of run or one such a package depends on, as dpkg
# knows them here.
if command -v pkg-config >/dev/null && command -v dpkg >/dev/null; then
	while read -r p; do
		dpkg-query -W -f='${Depends}\n' "$p" 2>/dev/null
	done <"$tmp/run" | tr ',|' '\n\n' | sed 's/([^)]*)//; s/:any//; s/[[:space:]]//g' |
		cat - "$tmp/run" | sort -u >"$tmp/closure"
	find "$SOURCE_ROOT" -name meson.build -exec cat {} + |
		grep -o "dependency('[^']*'[^)]*)" | grep -v 'required:' |
		sed "s/dependency('\([^']*\)'.*/\1/" | sort -u >"$tmp/required"
	while read -r dep; do
		[ "$dep" = threads ] && continue # the compiler's, no pkg-config file
		if ! pc=$(pkg-config --path "$dep" 2>/dev/null); then
			n=$((n + 1))
			echo "ok $n - $dep comes from run # SKIP no $dep.pc installed"
			continue
		fi
		owner=$(dpkg -S "$pc" 2>/dev/null | sed 's/[:,].*//')
		echo "$pc is in: ${owner:-no package}" >"$tmp/why"
		[ -n "$owner" ] && grep -qxF "$owner" "$tmp/closure"
		ok $? "$dep comes from run"
	done <"$tmp/required"
else
	n=$((n + 1))
	echo "ok $n - meson.build's libraries come from run # SKIP no pkg-config or dpkg"
fi

echo "1..$n"
