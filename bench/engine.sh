#!/bin/bash
# Satchel against an earlier Satchel, for a before/after table of an
# engine change: both binaries get the same mailboxes, both run at once on
# their own ports, and each satchel-bench load runs against one then the
# other (A B A B), printing this build / the earlier one.
#
#   BEFORE=/path/to/earlier/target/release bench/engine.sh
#                               # USERS=20 MESSAGES=100 CLIENTS=10 DURATION=8 RUNS=3
#                               # LOADS="imap --keep-open|imap|pop3|smtp"
#                               # (add "idle" for IDLE=10000 idle connections:
#                               # memory a connection and the fan-out, as
#                               # bench/compare.sh measures them; memory
#                               # from the first idle run only)
#
# BEFORE is a folder with that build's satchel and satchel-bench (for
# example `git worktree add /tmp/before REV` and a release build there).
# This build's binaries are built here, unless AFTER names a folder like
# BEFORE's (for a table of changes that are not the newest); each side is driven by its own
# satchel-bench, so a change to the load generator cannot skew the ratio.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${BEFORE:?set BEFORE to the folder holding the earlier satchel and satchel-bench}"
USERS=${USERS:-20} MESSAGES=${MESSAGES:-100} CLIENTS=${CLIENTS:-10} DURATION=${DURATION:-8} RUNS=${RUNS:-3}
IDLE=${IDLE:-10000}
LOADS=${LOADS:-"imap --keep-open|imap|pop3|smtp"}
WORK=$(mktemp -d /tmp/satchel-engine.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
if [ -z "${AFTER:-}" ]; then
  cargo build --release -q -p satchel -p satchel-bench
  AFTER=$ROOT/target/release
fi
python3 "$ROOT/tests/data/gen_mbox.py" "$WORK/mail.mbox" "$MESSAGES" >/dev/null
: > "$WORK/dns.txt"

# start NAME BINDIR BASEPORT: a server with USERS accounts, the mbox in each INBOX.
start() {
  local name=$1 bin=$2/satchel base=$3
  cat > "$WORK/$name.toml" <<CONF
hostname = "mail.example.test"
domains = ["example.test"]
[listen]
imap = ["127.0.0.1:$((base + 143))"]
pop3 = ["127.0.0.1:$((base + 110))"]
smtp = ["127.0.0.1:$((base + 25))"]
[limits]
imap_per_ip = 20000
imap_per_user = 20000
smtp_per_ip = 1000
CONF
  for i in $(seq 1 "$USERS"); do
    echo pass | "$bin" --config "$WORK/$name.toml" --data "$WORK/$name" user add "user$i@example.test" --password-stdin >/dev/null
    "$bin" --config "$WORK/$name.toml" --data "$WORK/$name" import "user$i@example.test" --mailbox INBOX "$WORK/mail.mbox" >/dev/null
  done
  SATCHEL_DNS_STATIC=$WORK/dns.txt "$bin" --config "$WORK/$name.toml" --data "$WORK/$name" serve >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    grep -q "^pop3 " "$WORK/$name.log" && return
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}
start satchel "$AFTER" 20000
SATCHEL_PID=${PIDS[-1]}
start before "$BEFORE" 30000
BEFORE_PID=${PIDS[-1]}

: > "$WORK/results"
IFS='|' read -ra LOAD_LIST <<< "$LOADS"
for load in "${LOAD_LIST[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    for server in satchel before; do
      if [ $server = satchel ]; then base=20000 bench=$AFTER/satchel-bench pid=$SATCHEL_PID
      else base=30000 bench=$BEFORE/satchel-bench pid=$BEFORE_PID; fi
      mode=$load clients=$CLIENTS
      case $load in
        pop3) port=$((base + 110)) ;;
        idle) port=$((base + 143)) clients=$IDLE \
          mode="idle --memory-of $pid --smtp-port $((base + 25)) --parallel 64" ;;
        smtp) port=$((base + 25)) mode="smtp --imap-port $((base + 143)) --rcpt user%d@example.test" ;;
        *) port=$((base + 143)) ;;
      esac
      # shellcheck disable=SC2086
      line=$("$bench" --port "$port" --user 'user%d@example.test' --users "$USERS" --clients "$clients" \
        --seconds "$DURATION" $mode)
      # Memory a connection means something only on a server's first idle
      # run: later ones start from what the allocator kept of the last.
      if [ "$load" = idle ] && [ "$run" -gt 1 ]; then
        line=$(echo "$line" | sed 's/ per_connection_kib=[^ ]*//')
      fi
      echo "$load|$server|$run|$line" | tee -a "$WORK/results" >&2
    done
  done
done

python3 "$ROOT/bench/ratios.py" "$WORK/results" before before
