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

cmd_install() {
	command -v "$CHROMIUM" >/dev/null 2>&1 && return 0
	local sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "chromium not found: apt-get install chromium (as root)"
		sudo=(sudo -n)
	fi
	command -v apt-get >/dev/null 2>&1 || die "chromium not found and there is no apt-get: install Chromium or Chrome by hand and set CHROMIUM"
	log "chromium not found; installing Debian's chromium with apt-get ..."
	local aptlog t0=$SECONDS
	aptlog="$(mktemp "${TMPDIR:-/tmp}/chromium-apt.XXXXXX")"
	# Lock::Timeout: wait for another apt-get (redis.sh runs beside us) instead of failing.
	local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
	if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends chromium; } \
		</dev/null >"$aptlog" 2>&1; then
		tail -n 30 "$aptlog" >&2
		die "apt-get install chromium failed (full log: $aptlog)"
	fi
	rm -f "$aptlog"
	command -v "$CHROMIUM" >/dev/null 2>&1 || die "chromium still not on PATH after apt-get install chromium"
	log "installed $("$CHROMIUM" --version 2>/dev/null | head -n1) ($((SECONDS - t0))s)"
}

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
