# shellcheck shell=bash
# Helpers shared by the service scripts. Source it after setting SCRIPT_NAME.

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }
log() { echo "$SCRIPT_NAME: $*" >&2; }

# alive PID: the process exists and is not a zombie (a stopped service shows as
# <defunct> for a moment until its parent reaps it).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z ]]
}

# stop_pid PID WHAT GRACE: TERM, up to GRACE seconds to exit, then KILL.
stop_pid() {
	local pid="$1" what="$2" grace="$3" i
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	log "$what $pid ignored TERM for ${grace}s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	die "could not stop $what pid $pid"
}

# apt_install COMMAND PACKAGE: installs Debian's PACKAGE with apt-get unless
# COMMAND is on PATH already; as root, or through sudo -n. A failure dies with
# the tail of apt-get's log.
apt_install() {
	local cmd="$1" pkg="$2"
	command -v "$cmd" >/dev/null 2>&1 && return 0
	local sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "$cmd not found: apt-get install $pkg (as root)"
		sudo=(sudo -n)
	fi
	command -v apt-get >/dev/null 2>&1 || die "$cmd not found and there is no apt-get: install $pkg by hand"
	log "$cmd not found; installing Debian's $pkg with apt-get ..."
	local aptlog t0=$SECONDS
	aptlog="$(mktemp "${TMPDIR:-/tmp}/$pkg-apt.XXXXXX")"
	# The other installers run beside this one, and apt-get update fails at
	# once on the package lists' lock, which DPkg::Lock::Timeout does not
	# cover: our installs take turns on a lock of their own, and the timeout
	# waits for anyone else's apt-get. Without an init system a package's
	# service is not started; where one runs, it does not disturb the tests.
	local lock="${TMPDIR:-/tmp}/outbound-apt.lock"
	local apt=(flock -w 900 "$lock" "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
	if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "$pkg"; } \
		</dev/null >"$aptlog" 2>&1; then
		tail -n 30 "$aptlog" >&2
		die "apt-get install $pkg failed (full log: $aptlog)"
	fi
	rm -f "$aptlog"
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd still not on PATH after apt-get install $pkg"
	log "installed $("$cmd" --version 2>/dev/null | head -n1) ($((SECONDS - t0))s)"
}
