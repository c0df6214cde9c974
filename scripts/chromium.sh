#!/usr/bin/env bash
# Installs the headless browser that the console's browser tests drive.
#
#   scripts/chromium.sh install   install Debian's chromium if it is missing
#   scripts/chromium.sh path      print the browser's path (fails when there is none)
#
# Environment: CHROMIUM (default: chromium on PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM="${CHROMIUM:-chromium}"

SCRIPT_NAME=chromium.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

cmd_install() { apt_install "$CHROMIUM" chromium; }

cmd_path() {
	command -v "$CHROMIUM" || die "chromium not found: run scripts/chromium.sh install (or apt-get install chromium)"
}

case "${1:-}" in
install) cmd_install ;;
path) cmd_path ;;
*)
	echo "usage: scripts/chromium.sh install | path" >&2
	exit 2
	;;
esac
