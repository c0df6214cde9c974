#!/usr/bin/env bash
# Runs a real Apache Kafka broker for tests: one node in KRaft combined mode
# (broker + controller), built from the kafka_2.13 jars on Maven Central.
#
#   scripts/kafka.sh install            fetch the jars into .cache/kafka/<version>/libs
#                                       (once; later runs are offline and instant)
#   scripts/kafka.sh start <statedir>   start a broker on free loopback ports, wait until
#                                       it serves, print its bootstrap address 127.0.0.1:PORT
#                                       (PLAINTEXT); the broker also has a SASL_SSL listener,
#                                       see below
#   scripts/kafka.sh restart <statedir> stop it and start it again on the same ports with
#                                       the same data (for fault injection)
#   scripts/kafka.sh stop <statedir>    stop it (TERM, then KILL)
#   scripts/kafka.sh sasl-env <statedir> print OUTBOUND_TEST_KAFKA_SASL_{BROKERS,CA,USER,PASSWORD}=...
#                                       for its SASL_SSL listener, one a line
#
# Environment: KAFKA_VERSION (default below), KAFKA_HEAP (default -Xmx512m),
# KAFKA_START_TIMEOUT seconds (default 60), KAFKA_LOG_LEVEL for the broker's own
# log in <statedir>/kafka.log (default WARN, plus the startup/shutdown lines).
# Needs Java 17+, openssl and, for `install` only, Maven.
#
# The SASL_SSL listener, for the tests of TLS and SASL: its port is in
# <statedir>/sasl.port, the CA of its certificate (made with openssl at start) in
# <statedir>/tls/ca.pem. It accepts PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for the
# user $SASL_USER with the password $SASL_PASSWORD (SCRAM credentials are created
# when the storage is formatted).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_HOME="$ROOT/.cache/kafka/$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.installed"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
SASL_USER=outbound
SASL_PASSWORD=outbound-test-secret

SCRIPT_NAME=kafka.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

need_java() {
	command -v java >/dev/null 2>&1 ||
		die "java not found: apt-get install openjdk-17-jre-headless (Kafka $KAFKA_VERSION needs Java 17+)"
	local v
	v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
	case "$v" in
	1.* | [0-9] | 1[0-6]) die "java $v is too old: Kafka $KAFKA_VERSION needs Java 17+ (apt-get install openjdk-17-jre-headless)" ;;
	esac
}

installed() { [[ -f "$MARKER" && -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]; }

cmd_install() {
	need_java
	installed && return 0
	command -v mvn >/dev/null 2>&1 || die "mvn not found: apt-get install maven (needed once, to fetch the Kafka $KAFKA_VERSION jars)"
	command -v flock >/dev/null 2>&1 || die "flock not found: apt-get install util-linux"
	mkdir -p "$KAFKA_HOME"
	# Serialise concurrent installs (e.g. two `make test` at once).
	exec 9>"$KAFKA_HOME/.lock"
	flock 9
	if installed; then exec 9>&-; return 0; fi

	log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central (once) ..."
	local tmp="$KAFKA_HOME/libs.tmp" mvnlog="$KAFKA_HOME/mvn.log" t0=$SECONDS
	rm -rf "$tmp" "$LIBS"
	# -B: batch mode (no stdin, no colours). The pom pins every version, so when the
	# local Maven repository (~/.m2) already holds the jars, e.g. in a fresh clone on
	# a machine that ran this before, the offline (-o) attempt needs no network.
	local mvn_args=(-B -ntp -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION"
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp")
	if ! mvn -o "${mvn_args[@]}" >"$mvnlog" 2>&1 && ! mvn "${mvn_args[@]}" >"$mvnlog" 2>&1; then
		tail -n 40 "$mvnlog" >&2
		die "maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (full log: $mvnlog)"
	fi
	[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "maven finished but $tmp/kafka_2.13-$KAFKA_VERSION.jar is missing (log: $mvnlog)"
	mv "$tmp" "$LIBS"
	(cd "$LIBS" && ls) >"$MARKER"
	exec 9>&-
	log "installed $(wc -l <"$MARKER") jars in $LIBS ($((SECONDS - t0))s)"
}

# free_ports N: N distinct free ports on 127.0.0.1, one per line.
free_ports() {
	command -v go >/dev/null 2>&1 || die "go not found (needed to pick free ports)"
	(cd "$ROOT" && go run ./scripts/freeport "$1")
}

# tcp_open PORT: true when something accepts connections on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# make_tls STATEDIR: a CA, and a broker certificate it signs for 127.0.0.1 and
# localhost, in STATEDIR/tls: ca.pem for clients, broker.pem (PKCS#8 key, then the
# certificate) for the broker's PEM keystore.
make_tls() {
	local tls="$1/tls"
	command -v openssl >/dev/null 2>&1 || die "openssl not found: apt-get install openssl (the broker's SASL_SSL listener needs a certificate)"
	rm -rf "$tls"
	mkdir -p "$tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=outbound-test-ca \
		-keyout "$tls/ca.key" -out "$tls/ca.pem" 2>"$tls/openssl.log" &&
		openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
			-keyout "$tls/broker.key" -out "$tls/broker.csr" 2>>"$tls/openssl.log" &&
		openssl x509 -req -days 30 -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
			-CAcreateserial -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') \
			-out "$tls/broker.crt" 2>>"$tls/openssl.log" || {
		cat "$tls/openssl.log" >&2
		die "openssl could not make the test certificates in $tls"
	}
	cat "$tls/broker.key" "$tls/broker.crt" >"$tls/broker.pem"
}

write_config() { # statedir broker_port controller_port sasl_port
	local dir="$1" bport="$2" cport="$3" sport="$4"
	cat >"$dir/server.properties" <<EOF
# Single-node KRaft test broker written by scripts/kafka.sh.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,SASL_SSL://127.0.0.1:$sport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport,SASL_SSL://127.0.0.1:$sport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL

# SASL_SSL, as managed clusters require: TLS with a certificate of make_tls, then
# PLAIN (users in the JAAS line) or SCRAM (users in the metadata, from format).
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$dir/tls/broker.pem
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
metadata.log.dir=$dir/metadata

num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
default.replication.factor=1
min.insync.replicas=1

offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests use short session timeouts and expect groups to form at once.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
EOF
	local level="${KAFKA_LOG_LEVEL:-WARN}"
	cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $level
rootLogger.appenderRef.out.ref = STDOUT
# Keep the lines that say the server started and stopped.
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
logger.kafka.name = kafka.Kafka
logger.kafka.level = INFO
EOF
}

java_opts() {
	local dir="$1"
	# shellcheck disable=SC2206
	local heap=(${KAFKA_HEAP:--Xms256m -Xmx512m})
	JAVA_OPTS=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
		-Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties"
		-cp "$LIBS/*")
}

cmd_start() {
	local dir="${1:?usage: kafka.sh start <statedir>}"
	cmd_install
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	if [[ -f "$dir/kafka.pid" ]] && alive "$(cat "$dir/kafka.pid")"; then
		die "a broker already runs from $dir (pid $(cat "$dir/kafka.pid")); run: scripts/kafka.sh stop $dir"
	fi
	local attempt
	for attempt in 1 2 3; do
		if start_once "$dir"; then
			return 0
		fi
		# Another process may have taken a port between picking and binding; retry.
		grep -q "Address already in use" "$dir/kafka.log" 2>/dev/null || break
		log "port taken while starting, retrying ($attempt/3)"
	done
	exit 1
}

start_once() {
	local dir="$1" ports bport cport sport cluster_id
	ports="$(free_ports 3)"
	bport="$(sed -n 1p <<<"$ports")"
	cport="$(sed -n 2p <<<"$ports")"
	sport="$(sed -n 3p <<<"$ports")"
	rm -rf "$dir/data" "$dir/metadata" "$dir/kafka.log" "$dir/kafka.pid" "$dir/kafka.port" "$dir/sasl.port"
	make_tls "$dir"
	write_config "$dir" "$bport" "$cport" "$sport"
	local JAVA_OPTS
	java_opts "$dir"

	# A cluster id is 16 random bytes in URL-safe base64 without padding (what
	# `kafka-storage.sh random-uuid` prints), which saves a JVM start. Like Kafka's
	# own generator, avoid a leading '-': the storage tool would take it for an option.
	cluster_id=-
	while [[ "$cluster_id" == -* ]]; do
		cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
	done
	if ! java "${JAVA_OPTS[@]}" kafka.tools.StorageTool format \
		--cluster-id "$cluster_id" --config "$dir/server.properties" \
		--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" \
		--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]" \
		>"$dir/format.log" 2>&1; then
		cat "$dir/format.log" >&2
		log "formatting the broker storage in $dir failed"
		return 1
	fi

	echo "$bport" >"$dir/kafka.port"
	echo "$sport" >"$dir/sasl.port"
	launch "$dir" "$bport"
}

# launch STATEDIR PORT: run the broker of STATEDIR's config and data, wait until it
# serves on PORT, print its bootstrap address.
launch() {
	local dir="$1" bport="$2" JAVA_OPTS
	java_opts "$dir"
	java "${JAVA_OPTS[@]}" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/kafka.pid"

	local deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! alive "$pid"; then
			log "the broker exited while starting; last lines of $dir/kafka.log:"
			tail -n 40 "$dir/kafka.log" >&2
			rm -f "$dir/kafka.pid"
			return 1
		fi
		# "Kafka Server started" is logged once the broker is unfenced and serves.
		if grep -q "Kafka Server started" "$dir/kafka.log" && tcp_open "$bport"; then
			echo "127.0.0.1:$bport"
			return 0
		fi
		sleep 0.2
	done
	log "the broker did not start within ${START_TIMEOUT}s; last lines of $dir/kafka.log:"
	tail -n 40 "$dir/kafka.log" >&2
	stop_pid "$pid" broker 10
	rm -f "$dir/kafka.pid"
	return 1
}

# A restart keeps the data and the ports, as a broker restarted in place does:
# clients reconnect to the address they know, and committed records survive.
cmd_restart() {
	local dir="${1:?usage: kafka.sh restart <statedir>}"
	[[ -f "$dir/server.properties" && -f "$dir/kafka.port" ]] ||
		die "no broker was started from $dir; run: scripts/kafka.sh start $dir"
	dir="$(cd "$dir" && pwd)"
	cmd_stop "$dir"
	mv -f "$dir/kafka.log" "$dir/kafka.log.$(date +%s)" 2>/dev/null || true
	launch "$dir" "$(cat "$dir/kafka.port")" || exit 1
}

cmd_stop() {
	local dir="${1:?usage: kafka.sh stop <statedir>}"
	[[ -f "$dir/kafka.pid" ]] || return 0
	stop_pid "$(cat "$dir/kafka.pid")" broker 10
	rm -f "$dir/kafka.pid"
}

cmd_sasl_env() {
	local dir="${1:?usage: kafka.sh sasl-env <statedir>}"
	[[ -f "$dir/sasl.port" ]] || die "no broker was started from $dir; run: scripts/kafka.sh start $dir"
	dir="$(cd "$dir" && pwd)"
	echo "OUTBOUND_TEST_KAFKA_SASL_BROKERS=127.0.0.1:$(cat "$dir/sasl.port")"
	echo "OUTBOUND_TEST_KAFKA_SASL_CA=$dir/tls/ca.pem"
	echo "OUTBOUND_TEST_KAFKA_SASL_USER=$SASL_USER"
	echo "OUTBOUND_TEST_KAFKA_SASL_PASSWORD=$SASL_PASSWORD"
}

case "${1:-}" in
install) cmd_install ;;
sasl-env) cmd_sasl_env "${2:-}" ;;
start) cmd_start "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*)
	echo "usage: scripts/kafka.sh install | start <statedir> | restart <statedir> | stop <statedir> | sasl-env <statedir>" >&2
	exit 2
	;;
esac
