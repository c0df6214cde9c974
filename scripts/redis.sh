#!/usr/bin/env bash
# Runs a throw-away redis-server for tests.
#
#   scripts/redis.sh install            install Debian's redis-server if it is missing
#   scripts/redis.sh start <statedir>   start one on a free loopback port (no persistence,
#                                       4096 databases), wait for PING, print 127.0.0.1:PORT
#   scripts/redis.sh stop <statedir>    stop it (TERM, then KILL)
#
# Environment: REDIS_SERVER (default: redis-server on PATH), REDIS_START_TIMEOUT seconds
# (default 20).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
START_TIMEOUT="${REDIS_START_TIMEOUT:-20}"

SCRIPT_NAME=redis.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

cmd_install() { apt_install "$REDIS_SERVER" redis-server; }

# ping PORT: true when the server on 127.0.0.1:PORT answers PING with PONG.
ping() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'PING\r\n' >&3
		IFS= read -r -t 1 reply <&3 || exit 1
		[[ "$reply" == +PONG* ]]
	) 2>/dev/null
}

cmd_start() {
	local dir="${1:?usage: redis.sh start <statedir>}"
	command -v "$REDIS_SERVER" >/dev/null 2>&1 || die "redis-server not found: run scripts/redis.sh install (or apt-get install redis-server)"
	command -v go >/dev/null 2>&1 || die "go not found (needed to pick a free port)"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	if [[ -f "$dir/redis.pid" ]] && alive "$(cat "$dir/redis.pid")"; then
		die "a redis-server already runs from $dir (pid $(cat "$dir/redis.pid")); run: scripts/redis.sh stop $dir"
	fi
	local attempt port pid deadline
	for attempt in 1 2 3; do
		port="$(cd "$ROOT" && go run ./scripts/freeport 1)"
		rm -f "$dir/redis.log"
		"$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
			--databases 4096 --daemonize no --dir "$dir" --logfile "$dir/redis.log" \
			>/dev/null 2>&1 </dev/null &
		pid=$!
		echo "$pid" >"$dir/redis.pid"
		deadline=$((SECONDS + START_TIMEOUT))
		while ((SECONDS < deadline)) && alive "$pid"; do
			if ping "$port"; then
				echo "$port" >"$dir/redis.port"
				echo "127.0.0.1:$port"
				return 0
			fi
			sleep 0.1
		done
		if alive "$pid"; then
			stop_pid "$pid" redis-server 5
			rm -f "$dir/redis.pid"
			log "redis-server did not answer PING within ${START_TIMEOUT}s; last lines of $dir/redis.log:"
			tail -n 20 "$dir/redis.log" >&2 || true
			exit 1
		fi
		rm -f "$dir/redis.pid"
		# Another process may have taken the port between picking and binding; retry.
		if grep -q "Address already in use" "$dir/redis.log" 2>/dev/null; then
			log "port $port taken while starting, retrying ($attempt/3)"
			continue
		fi
		break
	done
	log "redis-server exited while starting; last lines of $dir/redis.log:"
	tail -n 20 "$dir/redis.log" >&2 || true
	exit 1
}

cmd_stop() {
	local dir="${1:?usage: redis.sh stop <statedir>}"
	[[ -f "$dir/redis.pid" ]] || return 0
	stop_pid "$(cat "$dir/redis.pid")" redis-server 5
	rm -f "$dir/redis.pid"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*)
	echo "usage: scripts/redis.sh install | start <statedir> | stop <statedir>" >&2
	exit 2
	;;
esac
