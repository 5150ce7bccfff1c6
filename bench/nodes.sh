#!/bin/bash
# Many nodes on one PostgreSQL against one node on the embedded store
# (issue 20): the IMAP kept-open mix and SMTP filed/s on
#   embedded  one node, its own SQLite store and body files;
#   pg-1      one node on PostgreSQL;
#   pg-2      two nodes on the same PostgreSQL database, the load's
#             clients spread over both (satchel-bench --also-port).
# All run at once, each with its own copy of the same mailboxes; each
# load runs against one then the next (A B C A B C), RUNS times, and the
# medians are compared (ratios.py).
#
#   bench/nodes.sh          # USERS=20 MESSAGES=100 CLIENTS=10 DURATION=8 RUNS=3
#                           # LOADS="imap --keep-open|smtp"
#                           # EXTRA=--by-kind (each operation's figures, on stderr)
#
# PostgreSQL is a throwaway server in a temporary folder with Debian's
# default settings (fsync on, so commits are as durable as the embedded
# store's), started as the `postgres` user when run as root. Every
# process (the nodes, PostgreSQL, the load) shares this machine's cores:
# on 2 cores two nodes cannot add capacity, they only show what sharing
# one database costs.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
USERS=${USERS:-20} MESSAGES=${MESSAGES:-100} CLIENTS=${CLIENTS:-10} DURATION=${DURATION:-8} RUNS=${RUNS:-3}
LOADS=${LOADS:-"imap --keep-open|smtp"}
WORK=$(mktemp -d /tmp/satchel-nodes.XXXXXX)
PIDS=()
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort | tail -1)")
AS=()
[ "$(id -u)" = 0 ] && AS=(runuser -u postgres --)
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "${AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
cargo build --release -q -p satchel -p satchel-bench
BIN=$ROOT/target/release
python3 "$ROOT/tests/data/gen_mbox.py" "$WORK/mail.mbox" "$MESSAGES" >/dev/null
: > "$WORK/dns.txt"

# PostgreSQL on a free loopback port.
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/pg"
# PostgreSQL runs as its own user, which must reach its folder.
[ "$(id -u)" = 0 ] && chmod 711 "$WORK" && chown postgres: "$WORK/pg"
"${AS[@]}" "$PG_BIN/initdb" -A trust -U postgres -E UTF8 -D "$WORK/pg/data" >/dev/null
"${AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" start >/dev/null
"${AS[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE pg1" -c "CREATE DATABASE pg2"

# config NAME BASEPORT [URL]: a config file for one node.
config() {
  local name=$1 base=$2 url=${3:-}
  cat > "$WORK/$name.toml" <<CONF
hostname = "mail.example.test"
domains = ["example.test"]
[listen]
imap = ["127.0.0.1:$((base + 143))"]
smtp = ["127.0.0.1:$((base + 25))"]
[limits]
imap_per_ip = 20000
imap_per_user = 20000
smtp_per_ip = 1000
CONF
  if [ -n "$url" ]; then printf '[storage]\nbackend = "postgres"\nurl = "%s"\n' "$url" >> "$WORK/$name.toml"; fi
}

# fill NAME: USERS accounts, the mbox in each INBOX, through node NAME.
fill() {
  for i in $(seq 1 "$USERS"); do
    echo pass | "$BIN/satchel" --config "$WORK/$1.toml" --data "$WORK/$1" user add "user$i@example.test" --password-stdin >/dev/null
    "$BIN/satchel" --config "$WORK/$1.toml" --data "$WORK/$1" import "user$i@example.test" --mailbox INBOX "$WORK/mail.mbox" >/dev/null
  done
}

# serve NAME: starts node NAME and waits for its doors.
serve() {
  SATCHEL_DNS_STATIC=$WORK/dns.txt "$BIN/satchel" --config "$WORK/$1.toml" --data "$WORK/$1" serve >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    grep -q "^smtp " "$WORK/$1.log" && return
    sleep 0.1
  done
  echo "$1 did not start:" >&2
  cat "$WORK/$1.log" >&2
  exit 1
}

DB=postgres://postgres@127.0.0.1:$PG_PORT
config embedded 20000
config pg1 30000 "$DB/pg1"
config pg2a 40000 "$DB/pg2"
config pg2b 50000 "$DB/pg2"
fill embedded
fill pg1
fill pg2a
for node in embedded pg1 pg2a pg2b; do serve $node; done

: > "$WORK/results"
IFS='|' read -ra LOAD_LIST <<< "$LOADS"
for load in "${LOAD_LIST[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    for setup in embedded pg-1 pg-2; do
      case $setup in
        embedded) base=20000 also=() ;;
        pg-1) base=30000 also=() ;;
        pg-2) base=40000 also=() ;;
      esac
      case $load in
        smtp) port=$((base + 25)) mode="smtp --imap-port $((base + 143)) --rcpt user%d@example.test"
              [ "$setup" = pg-2 ] && also=(--also-port 50025) ;;
        *) port=$((base + 143)) mode=$load
              [ "$setup" = pg-2 ] && also=(--also-port 50143) ;;
      esac
      # shellcheck disable=SC2086
      line=$("$BIN/satchel-bench" --port "$port" "${also[@]}" --user 'user%d@example.test' \
        --users "$USERS" --clients "$CLIENTS" --seconds "$DURATION" ${EXTRA:-} $mode)
      echo "$load|$setup|$run|$line" | tee -a "$WORK/results" >&2
    done
  done
done

# Medians per setup, and per-run ratios (paired by run) of the two-node
# figure to the embedded one and to one node on PostgreSQL.
python3 - "$WORK/results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(lambda: collections.defaultdict(dict))
for line in open(sys.argv[1]):
    load, setup, run, figures = line.rstrip("\n").split("|", 3)
    f = dict(kv.split("=", 1) for kv in figures.split() if "=" in kv and not kv.startswith("first_error"))
    if int(f.get("errors", "0")) > 0:
        print(f"# {load} on {setup}, run {run}: {f['errors']} errors", file=sys.stderr)
    for key in ("ops/s", "filed/s", "p50_us", "p99_us"):
        if key in f:
            rows[(load, key)][setup][run] = float(f[key])
print("| load | figure | embedded | pg-1 | pg-2 | pg-2/embedded | pg-2/pg-1 |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (load, key), by in rows.items():
    med = {s: statistics.median(by[s].values()) for s in ("embedded", "pg-1", "pg-2") if by[s]}
    ratio = lambda a, b: statistics.median(by[a][r] / by[b][r] for r in by[a] if by[b].get(r))
    print(f"| {load} | {key} | {med['embedded']:.1f} | {med['pg-1']:.1f} | {med['pg-2']:.1f} | "
          f"{ratio('pg-2', 'embedded'):.2f} | {ratio('pg-2', 'pg-1'):.2f} |")
PY
