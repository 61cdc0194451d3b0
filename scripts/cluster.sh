#!/bin/sh
# Starts three authorities on loopback as one cluster, each durable in a
# directory of its own and with its operator endpoint, and stops them all
# on Ctrl-C (or SIGTERM). They start together, each listing all three
# gossip addresses (its own among them) to join, as a StatefulSet's pods
# do. Settings: CLUSTER_DATA (directory, default /tmp/rewind-cluster),
# CLUSTER_KEY, FUNCTIONS (default counter), GO.
set -eu
GO=${GO:-go}
DATA=${CLUSTER_DATA:-/tmp/rewind-cluster}
KEY=${CLUSTER_KEY:-make-cluster-key-for-loopback-only}
FUNCTIONS=${FUNCTIONS:-counter}
JOIN=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
mkdir -p bin "$DATA"
"$GO" build -o bin/authority ./authority/cmd/authority
pids=""
stop() {
	trap - INT TERM EXIT
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait
}
trap stop INT TERM EXIT
for i in 1 2 3; do
	./bin/authority -functions "$FUNCTIONS" -listen 127.0.0.1:700$i -http 127.0.0.1:909$i \
		-node-id $i -gossip 127.0.0.1:710$i -join "$JOIN" -join-timeout 1m \
		-cluster-key "$KEY" -cluster-size 3 -data "$DATA/n$i" 2>"$DATA/n$i.log" &
	pids="$pids $!"
done
echo "cluster: authorities on udp 127.0.0.1:7001, :7002, :7003 (pids$pids)"
echo "cluster: pages http://127.0.0.1:9091/debug/rewind, :9092, :9093; logs $DATA/n1.log ..."
echo "cluster: Ctrl-C stops all three"
wait
