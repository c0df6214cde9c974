#!/usr/bin/env bash
# Runs a throw-away three-master Redis Cluster for tests.
#
#   scripts/redis-cluster.sh start <statedir>   start three redis-server processes in
#                                               cluster mode on free loopback ports,
#                                               create the cluster (no replicas), wait
#                                               for cluster_state:ok, print
#                                               127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#   scripts/redis-cluster.sh stop <statedir>    stop them (TERM, then KILL)
#
# Install redis-server with scripts/redis.sh install. AOF is on, so that a
# restarted master comes back with its data. Environment: REDIS_SERVER, REDIS_CLI
# (default: on PATH), REDIS_START_TIMEOUT seconds (default 30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
MASTERS=3

SCRIPT_NAME=redis-cluster.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

# state PORT: the node's CLUSTER INFO state ("ok", "fail"), empty when it does not answer.
state() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p'
}

cmd_start() {
	local dir="${1:?usage: redis-cluster.sh start <statedir>}"
	command -v "$REDIS_SERVER" >/dev/null 2>&1 || die "redis-server not found: run scripts/redis.sh install"
	command -v "$REDIS_CLI" >/dev/null 2>&1 || die "redis-cli not found: run scripts/redis.sh install"
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	[[ -s "$dir/pids" ]] && die "a cluster already runs from $dir; run: scripts/redis-cluster.sh stop $dir"
	# A node listens on its port and on a cluster bus port: pick both, all free.
	local ports=() port bus i addrs=()
	mapfile -t ports < <(cd "$ROOT" && go run ./scripts/freeport $((2 * MASTERS)))
	: >"$dir/pids"
	for ((i = 0; i < MASTERS; i++)); do
		port="${ports[i]}" bus="${ports[i + MASTERS]}"
		mkdir -p "$dir/$port"
		"$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-port "$bus" \
			--cluster-config-file nodes.conf --cluster-node-timeout 5000 \
			--save '' --appendonly yes --daemonize no --dir "$dir/$port" --logfile "$dir/$port/redis.log" \
			>/dev/null 2>&1 </dev/null &
		echo "$!" >>"$dir/pids"
		addrs+=("127.0.0.1:$port")
	done
	local deadline=$((SECONDS + START_TIMEOUT))
	for ((i = 0; i < MASTERS; i++)); do
		until "$REDIS_CLI" -p "${ports[i]}" ping 2>/dev/null | grep -q PONG; do
			((SECONDS < deadline)) || { tail -n 20 "$dir/${ports[i]}/redis.log" >&2; die "node ${ports[i]} did not answer PING within ${START_TIMEOUT}s"; }
			sleep 0.1
		done
	done
	"$REDIS_CLI" --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 ||
		{ tail -n 20 "$dir/create.log" >&2; die "redis-cli --cluster create failed"; }
	for ((i = 0; i < MASTERS; i++)); do
		until [[ "$(state "${ports[i]}")" == ok ]]; do
			((SECONDS < deadline)) || die "node ${ports[i]} not at cluster_state:ok within ${START_TIMEOUT}s"
			sleep 0.1
		done
	done
	(IFS=,; echo "${addrs[*]}")
}

cmd_stop() {
	local dir="${1:?usage: redis-cluster.sh stop <statedir>}" pid
	[[ -f "$dir/pids" ]] || return 0
	while read -r pid; do
		stop_pid "$pid" redis-server 5 &
	done <"$dir/pids"
	wait
	rm -f "$dir/pids"
}

case "${1:-}" in
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*)
	echo "usage: scripts/redis-cluster.sh start <statedir> | stop <statedir>" >&2
	exit 2
	;;
esac
