#!/bin/bash
# Loads the same mailboxes into Satchel and the reference Dovecot and runs
# each satchel-bench load against both in turn (A B A B ...), then prints
# every figure as Satchel/Dovecot with min, median and max over the runs.
#
#   bench/compare.sh            # USERS=20 MESSAGES=100 CLIENTS=10 DURATION=10 RUNS=3
#
# Both check the same Argon2id hashes (Satchel's, m=19456 KiB, t=2, p=1,
# copied into Dovecot's passwd-file), so a login costs both the same.
# Needs: cargo, python3, and Dovecot (../shared/reference/dovecot/start.sh
# installs it with apt-get).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
USERS=${USERS:-20} MESSAGES=${MESSAGES:-100} CLIENTS=${CLIENTS:-10} DURATION=${DURATION:-10} RUNS=${RUNS:-3}
WORK=$(mktemp -d /tmp/satchel-compare.XXXXXX)
# Dovecot's auth and mail processes run as other users: they must reach in.
chmod 755 "$WORK"
S_IMAP=11143 S_POP3=11110 D_IMAP=10143 D_POP3=10110
export DOVECOT_REF_DIR=$WORK/dovecot

cleanup() {
  [ -n "${SATCHEL_PID:-}" ] && kill "$SATCHEL_PID" 2>/dev/null || true
  bash "$SHARED/reference/dovecot/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
cargo build --release -q -p satchel -p satchel-bench
SAT=$ROOT/target/release/satchel BENCH=$ROOT/target/release/satchel-bench
python3 "$SHARED/data/gen_mbox.py" "$WORK/mail.mbox" "$MESSAGES" >/dev/null

# Satchel: accounts user1..N@example.test, each with the mbox in INBOX.
cat > "$WORK/satchel.toml" <<CONF
hostname = "mail.example.test"
domains = ["example.test"]
[listen]
imap = ["127.0.0.1:$S_IMAP"]
pop3 = ["127.0.0.1:$S_POP3"]
CONF
sat() { "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" "$@"; }
for i in $(seq 1 "$USERS"); do
  echo pass | sat user add "user$i@example.test" --password-stdin >/dev/null
  sat import "user$i@example.test" --mailbox INBOX "$WORK/mail.mbox" >/dev/null
done
# Started directly (not through the function) so that $! is the server.
"$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" serve >"$WORK/satchel.log" 2>&1 &
SATCHEL_PID=$!
for _ in $(seq 1 100); do
  grep -q "^pop3 " "$WORK/satchel.log" && break
  kill -0 "$SATCHEL_PID" 2>/dev/null || { echo "satchel did not start:" >&2; cat "$WORK/satchel.log" >&2; exit 1; }
  sleep 0.1
done

# Dovecot: the same messages, as Maildir (exported by Satchel, so both
# hold the same bytes).
sat export user1@example.test --mailbox INBOX --format maildir "$WORK/maildir" >/dev/null
PASS_SCHEME=ARGON2ID USERS=$USERS IMAP_PORT=$D_IMAP POP3_PORT=$D_POP3 \
  bash "$SHARED/reference/dovecot/start.sh" >/dev/null
for i in $(seq 1 "$USERS"); do
  mkdir -p "$DOVECOT_REF_DIR/mail/user$i/Maildir"
  cp -r "$WORK/maildir/cur" "$WORK/maildir/new" "$WORK/maildir/tmp" "$DOVECOT_REF_DIR/mail/user$i/Maildir/"
done
chown -R 5000:5000 "$DOVECOT_REF_DIR/mail"
# The same hash cost on both sides: Dovecot checks Satchel's own Argon2id
# hashes (m=19456 KiB, t=2, p=1), not doveadm's costlier default.
python3 - "$WORK/satchel/index.sqlite" "$DOVECOT_REF_DIR/users" <<'PY'
import sqlite3, sys
hashes = dict(sqlite3.connect(sys.argv[1]).execute("SELECT address, password_hash FROM accounts"))
lines = []
for line in open(sys.argv[2]):
    user, _, rest = line.rstrip("\n").split(":", 2)
    lines.append(f"{user}:{{ARGON2ID}}{hashes[user + '@example.test']}:{rest}")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
sleep 1

LOADS=("pop3" "imap" "imap --keep-open")
: > "$WORK/results"
for load in "${LOADS[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    for server in satchel dovecot; do
      if [ $server = satchel ]; then port_imap=$S_IMAP port_pop3=$S_POP3 user='user%d@example.test'
      else port_imap=$D_IMAP port_pop3=$D_POP3 user='user%d'; fi
      case $load in pop3) port=$port_pop3 ;; *) port=$port_imap ;; esac
      # shellcheck disable=SC2086
      line=$("$BENCH" --port "$port" --user "$user" --users "$USERS" --clients "$CLIENTS" \
        --seconds "$DURATION" $load)
      echo "$load|$server|$run|$line" | tee -a "$WORK/results" >&2
    done
  done
done

python3 - "$WORK/results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    load, server, run, figures = line.rstrip("\n").split("|", 3)
    f = dict(kv.split("=", 1) for kv in figures.split() if "=" in kv and not kv.startswith("first_error"))
    if int(f["errors"]) > 0:
        print(f"# {load} on {server}, run {run}: {f['errors']} errors", file=sys.stderr)
    for key in ("ops/s", "rounds/s", "p50_us", "p99_us"):
        rows[(load, key)][server].append(float(f[key]))
print("| load | figure | Satchel (median) | Dovecot (median) | Satchel/Dovecot min | median | max |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for (load, key), by in rows.items():
    s, d = by["satchel"], by["dovecot"]
    ratios = sorted(a / b for a, b in zip(s, d) if b)
    if not ratios:
        continue
    print(f"| {load} | {key} | {statistics.median(s):.1f} | {statistics.median(d):.1f} | "
          f"{ratios[0]:.2f} | {statistics.median(ratios):.2f} | {ratios[-1]:.2f} |")
PY
