#!/bin/sh
# Installs the Entangle plugin for the user running it, where Entangle
# looks first: $XDG_CONFIG_HOME/entangle/plugins/copystand (normally
# ~/.config/entangle/plugins/copystand).  Run through meson:
#   meson compile -C build install-entangle-plugin
# usage: install-user.sh MODULE.so PLUGIN-FILE
set -eu
[ $# -eq 2 ] || { echo "usage: $0 MODULE.so PLUGIN-FILE" >&2; exit 2; }
dest="${XDG_CONFIG_HOME:-$HOME/.config}/entangle/plugins/copystand"
mkdir -p "$dest"
install -m 0755 "$1" "$dest/"
install -m 0644 "$2" "$dest/"
echo "copystand: Entangle plugin installed in $dest"
echo "copystand: enable it in Entangle: Preferences, Plugins, tick copystand"
