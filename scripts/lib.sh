# shellcheck shell=bash
# Helpers shared by kafka.sh and redis.sh. Source it after setting SCRIPT_NAME.

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
