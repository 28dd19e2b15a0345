#!/usr/bin/env bash
# The Postfix baseline for docs/benchmarks.md, measured the same way as `npm run bench`:
# smtp-source with a new connection per message, and the clock stops when the N-th message is
# in the Maildir new/ directory (Postfix's virtual(8) fsyncs each file before the rename).
#
# Needs root and Debian's postfix package (apt-get install postfix). It reconfigures the local
# Postfix: listens ONLY on 127.0.0.1:2626, no port 25, no relaying anywhere (default_transport
# = error), no DNS; delivers bench.test to a Maildir under /var/tmp/postfix-bench. It stops
# Postfix when done. Usage: bench/postfix-baseline.sh [--quick]
set -euo pipefail

QUICK=${1:-}
BASE=/var/tmp/postfix-bench
BOX=$BASE/bench.test/sink/
PORT=2626
command -v smtp-source >/dev/null || { echo "install postfix first: apt-get install postfix" >&2; exit 1; }

postfix stop >/dev/null 2>&1 || true
mkdir -p "$BASE"
chown -R mail:mail "$BASE"
echo "sink@bench.test bench.test/sink/" > /etc/postfix/vmailbox
postmap /etc/postfix/vmailbox
postconf -e \
  "myhostname=mx.postfix.bench" \
  "inet_interfaces=loopback-only" \
  "inet_protocols=ipv4" \
  "mydestination=" \
  "mynetworks=127.0.0.0/8" \
  "relayhost=" \
  "default_transport=error:no outbound mail from the benchmark" \
  "relay_transport=error:no outbound mail from the benchmark" \
  "disable_dns_lookups=yes" \
  "smtp_dns_support_level=disabled" \
  "smtpd_peername_lookup=no" \
  "virtual_mailbox_domains=bench.test" \
  "virtual_mailbox_base=$BASE" \
  "virtual_mailbox_maps=hash:/etc/postfix/vmailbox" \
  "virtual_uid_maps=static:$(id -u mail)" \
  "virtual_gid_maps=static:$(id -g mail)" \
  "virtual_destination_concurrency_limit=50" \
  "default_process_limit=200" \
  "smtpd_client_connection_count_limit=0" \
  "smtpd_client_connection_rate_limit=0" \
  "message_size_limit=52428800"
# Replace the port-25 smtpd with one on 127.0.0.1:2626.
sed -i -E 's/^(smtp|127\.0\.0\.1:[0-9]+)(\s+inet\s+n\s+-\s+[yn]\s+-\s+-\s+smtpd)/#\1\2/' /etc/postfix/master.cf
grep -q "^127.0.0.1:$PORT " /etc/postfix/master.cf ||
  echo "127.0.0.1:$PORT inet n - n - - smtpd" >> /etc/postfix/master.cf
postfix start >/dev/null 2>&1
sleep 2

echo "| sessions | size | messages | accept s | accept msg/s | end-to-end s | end-to-end msg/s |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
run() {
  local sessions=$1 size=$2 count=$3
  [ "$QUICK" = "--quick" ] && count=$(( (count + 9) / 10 ))
  rm -rf "$BOX"
  local t0 t1 t2 n
  t0=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$count" -l "$size" -f load@bench.example -t sink@bench.test "127.0.0.1:$PORT"
  t1=$(date +%s.%N)
  while :; do
    n=$(find "$BOX/new" -type f 2>/dev/null | wc -l)
    [ "$n" -ge "$count" ] && break
    sleep 0.01
  done
  t2=$(date +%s.%N)
  awk -v s="$sessions" -v z="$size" -v c="$count" -v a="$t0" -v b="$t1" -v e="$t2" \
    'BEGIN { printf "| %d | %d KB | %d | %.2f | %d | %.2f | %d |\n", s, z/1024, c, b-a, c/(b-a), e-a, c/(e-a) }'
}
run 1 4096 1000
run 20 4096 5000
run 50 4096 5000
run 1 102400 500
run 20 102400 2000
run 50 102400 2000
postfix stop >/dev/null 2>&1 || true
rm -rf "$BOX"
