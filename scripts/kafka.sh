#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft) on 127.0.0.1 for the tests.
#   scripts/kafka.sh install          resolve the jars from Maven Central into .cache/kafka/libs
#   scripts/kafka.sh start DIR        start a broker with its state in DIR; prints the bootstrap address
#                                     (also written to DIR/bootstrap) once it accepts connections
#   scripts/kafka.sh stop DIR         stop the broker started in DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
libs="$root/.cache/kafka/libs"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "${1:-}" in
install)
  if [ -f "$libs/.complete" ]; then exit 0; fi
  mkdir -p "$libs"
  mvn -q -B -f "$root/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete"
  ;;
start)
  dir=${2:?usage: kafka.sh start DIR}
  "$0" install
  mkdir -p "$dir"
  port=$(free_port); cport=$(free_port)
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  cat > "$dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
  java_opts=(-Xms256m -Xmx512m -XX:+UseSerialGC -Dlog4j.configuration="file:$dir/log4j.properties")
  cluster_id=$(java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool random-uuid)
  java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" \
       -c "$dir/server.properties" > "$dir/format.log" 2>&1
  nohup java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
       > "$dir/stdout.log" 2>&1 &
  echo $! > "$dir/pid"
  # Ready when the broker accepts TCP connections and has registered (bounded wait: 90 s).
  for _ in $(seq 1 180); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "kafka broker exited; see $dir/stdout.log and $dir/broker.log" >&2; exit 1
    fi
    if grep -q "Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started" "$dir/stdout.log" "$dir/broker.log" 2>/dev/null \
       || python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1',$port),0.5)" 2>/dev/null; then
      echo "127.0.0.1:$port" > "$dir/bootstrap"
      echo "127.0.0.1:$port"
      exit 0
    fi
    sleep 0.5
  done
  echo "kafka broker did not become ready in 90 s" >&2; exit 1
  ;;
stop)
  dir=${2:?usage: kafka.sh stop DIR}
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
  ;;
*) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
