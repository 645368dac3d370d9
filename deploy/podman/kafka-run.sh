#!/bin/sh
# Entry point of the local Kafka image (scripts/deploy/images.sh kafka): a single KRaft node configured the way the
# apache/kafka image is, from KAFKA_<PROPERTY> variables ('_' for '.', '__' for '_', '___' for '-'; e.g.
# KAFKA_NODE_ID=1 is node.id=1), so that the chart's in-chart Kafka runs on either image. Formats the log
# directory on first start (cluster id from CLUSTER_ID, or a new one), then execs the broker: it is PID 1 and
# SIGTERM stops it cleanly.
set -eu
props=/tmp/server.properties
: >"$props"
env | grep '^KAFKA_' | grep -v -e '^KAFKA_HEAP_OPTS=' -e '^KAFKA_DATA=' | while IFS='=' read -r name value; do
  key="$(echo "${name#KAFKA_}" | tr 'A-Z' 'a-z' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')"
  echo "$key=$value" >>"$props"
done
cat >/tmp/log4j2.properties <<'LOG'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.org.name = org.apache.kafka
logger.org.level = WARN
LOG
logdir="$(sed -n 's/^log\.dirs=//p' "$props" | cut -d, -f1)"
mkdir -p "${logdir:?KAFKA_LOG_DIRS is required}"
java_opts="-Dlog4j2.configurationFile=/tmp/log4j2.properties -Djava.awt.headless=true -XX:+UseG1GC"
if [ ! -f "$logdir/meta.properties" ]; then
  id="${CLUSTER_ID:-$(java -cp '/opt/kafka/lib/*' kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)}"
  java $java_opts -cp '/opt/kafka/lib/*' kafka.tools.StorageTool format -t "$id" -c "$props" --ignore-formatted
fi
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} $java_opts -cp '/opt/kafka/lib/*' kafka.Kafka "$props"
