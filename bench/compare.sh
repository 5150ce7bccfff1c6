#!/bin/bash
# Loads the same mailboxes into Satchel and the reference Dovecot and runs
# each satchel-bench load against both in turn (A B A B ...), then prints
# every figure as Satchel/Dovecot with min, median and max over the runs.
#
#   bench/compare.sh            # USERS=20 MESSAGES=100 CLIENTS=10 DURATION=10 RUNS=3
#                               # IDLE=1000 (Satchel; Dovecot: as many as its
#                               # limits allow, 10 per user and IP, or with
#                               # MAX_CONNECTIONS=N, up to N; IDLE=0: no idle load)
#                               # LOADS="pop3|imap|imap --keep-open|smtp"
#
# Dovecot's knobs pass through to its start script: MAIL_FSYNC (optimized,
# its default, or always, as Satchel does), AUTH_CACHE=1 (its
# authentication cache, as production runs it) and MAX_CONNECTIONS. The
# aims of the engine issue are measured with
#   AUTH_CACHE=1 IDLE=10000 MAX_CONNECTIONS=10000 bench/compare.sh
#   MAIL_FSYNC=always IDLE=0 LOADS="imap --keep-open" bench/compare.sh
#
# Both check the same Argon2id hashes (Satchel's, m=19456 KiB, t=2, p=1,
# copied into Dovecot's passwd-file), so a login costs both the same.
# SMTP: Dovecot has no MX, so Satchel's SMTP door is compared with Postfix
# delivering through Dovecot's LDA (both fsync before 250; Postfix files
# later, and the load waits until IMAP shows every message filed).
# Needs root, cargo, python3, Dovecot (scripts/reference-dovecot/start.sh
# installs it with apt-get) and Postfix (apt-get install postfix); a user
# with uid 5000 (Dovecot's mail uid) is added if there is none, for the LDA.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REFERENCE=$ROOT/scripts/reference-dovecot
USERS=${USERS:-20} MESSAGES=${MESSAGES:-100} CLIENTS=${CLIENTS:-10} DURATION=${DURATION:-10} RUNS=${RUNS:-3}
IDLE=${IDLE:-1000}
LOADS=${LOADS:-"pop3|imap|imap --keep-open|smtp"}
echo >&2 "Dovecot: mail_fsync=${MAIL_FSYNC:-optimized} auth cache ${AUTH_CACHE:-0} max connections ${MAX_CONNECTIONS:-its own limits}"
WORK=$(mktemp -d /tmp/satchel-compare.XXXXXX)
# Dovecot's auth and mail processes run as other users: they must reach in.
chmod 755 "$WORK"
S_IMAP=11143 S_POP3=11110 S_SMTP=11025 D_IMAP=10143 D_POP3=10110 P_SMTP=10025
export DOVECOT_REF_DIR=$WORK/dovecot

cleanup() {
  [ -n "${SATCHEL_PID:-}" ] && kill "$SATCHEL_PID" 2>/dev/null || true
  [ -d "$WORK/postfix" ] && postfix -c "$WORK/postfix/conf" stop >/dev/null 2>&1 || true
  bash "$REFERENCE/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
cargo build --release -q -p satchel -p satchel-bench
SAT=$ROOT/target/release/satchel BENCH=$ROOT/target/release/satchel-bench
python3 "$ROOT/tests/data/gen_mbox.py" "$WORK/mail.mbox" "$MESSAGES" >/dev/null

# Satchel: accounts user1..N@example.test, each with the mbox in INBOX.
cat > "$WORK/satchel.toml" <<CONF
hostname = "mail.example.test"
domains = ["example.test"]
[listen]
imap = ["127.0.0.1:$S_IMAP"]
pop3 = ["127.0.0.1:$S_POP3"]
smtp = ["127.0.0.1:$S_SMTP"]
[limits]
imap_per_ip = 20000
imap_per_user = 20000
smtp_per_ip = 1000
CONF
sat() { "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" "$@"; }
for i in $(seq 1 "$USERS"); do
  echo pass | sat user add "user$i@example.test" --password-stdin >/dev/null
  sat import "user$i@example.test" --mailbox INBOX "$WORK/mail.mbox" >/dev/null
done
# Started directly (not through the function) so that $! is the server.
# No DNS here: SPF/DKIM/DMARC look up an empty static table.
: > "$WORK/dns.txt"
SATCHEL_DNS_STATIC=$WORK/dns.txt "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" serve >"$WORK/satchel.log" 2>&1 &
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
  bash "$REFERENCE/start.sh" >/dev/null
for i in $(seq 1 "$USERS"); do
  mkdir -p "$DOVECOT_REF_DIR/mail/user$i/Maildir"
  cp -r "$WORK/maildir/cur" "$WORK/maildir/new" "$WORK/maildir/tmp" "$DOVECOT_REF_DIR/mail/user$i/Maildir/"
done
chown -R 5000:5000 "$DOVECOT_REF_DIR/mail"
# The same hash cost on both sides: Dovecot checks Satchel's own Argon2id
# hashes (m=19456 KiB, t=2, p=1), not doveadm's costlier default.
python3 "$ROOT/bench/dovecot_hashes.py" "$WORK/satchel/index.sqlite" "$DOVECOT_REF_DIR/users"

# Postfix on loopback, handing mail for example.test to Dovecot's LDA.
getent passwd 5000 >/dev/null || useradd -u 5000 -M -d /nonexistent -s /usr/sbin/nologin satchelbench
LDA_USER=$(getent passwd 5000 | cut -d: -f1)
PF=$WORK/postfix
mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
chown postfix "$PF/data"
cat > "$PF/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.test
mydestination =
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = example.test
virtual_transport = dovecot
dovecot_destination_recipient_limit = 1
alias_maps =
alias_database =
local_recipient_maps =
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
maillog_file_prefixes = $WORK
maillog_file = $PF/maillog
biff = no
smtp_dns_support_level = disabled
CONF
cat > "$PF/conf/master.cf" <<CONF
127.0.0.1:$P_SMTP inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
dovecot   unix - n n - - pipe flags=DRhu user=$LDA_USER:$LDA_USER argv=/usr/lib/dovecot/dovecot-lda -c $DOVECOT_REF_DIR/dovecot.conf -o log_path=/dev/null -f \${sender} -d \${user}
CONF
# postfix only prints its fatal errors to a terminal (or syslog).
script -qc "postfix -c $PF/conf start" /dev/null >&2 || { cat "$PF/maillog" >&2; exit 1; }
sleep 1

# Idle, first (the SMTP load below grows the mailboxes, and a selected
# mailbox costs a session memory per message): connections in IDLE, the
# server's memory per connection (PSS of its process tree) and how fast
# one message per user reaches them all.
# Dovecot takes 10 connections per user and IP and 100 IMAP processes by
# the reference config: it gets what those limits allow.
# MAX_CONNECTIONS lifts those limits (a process per connection still).
if [ -n "${MAX_CONNECTIONS:-}" ]; then
  D_IDLE=$(( IDLE < MAX_CONNECTIONS ? IDLE : MAX_CONNECTIONS ))
else
  D_IDLE=$(( USERS * 10 < 90 ? USERS * 10 : 90 ))
fi
if [ "$IDLE" -gt 0 ]; then
  echo >&2 "idle: Satchel $IDLE connections, Dovecot $D_IDLE"
  S_LINE=$("$BENCH" --port "$S_IMAP" --user 'user%d@example.test' --users "$USERS" --clients "$IDLE" \
    idle --memory-of "$SATCHEL_PID" --smtp-port "$S_SMTP" --parallel 64)
  D_LINE=$("$BENCH" --port "$D_IMAP" --user 'user%d' --users "$USERS" --clients "$D_IDLE" \
    idle --memory-of "$(cat "$DOVECOT_REF_DIR/run/ref.pid")" --smtp-port "$P_SMTP" --parallel 64)
fi

IFS='|' read -ra LOAD_LIST <<< "$LOADS"
: > "$WORK/results"
for load in "${LOAD_LIST[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    for server in satchel dovecot; do
      if [ $server = satchel ]; then port_imap=$S_IMAP port_pop3=$S_POP3 port_smtp=$S_SMTP user='user%d@example.test'
      else port_imap=$D_IMAP port_pop3=$D_POP3 port_smtp=$P_SMTP user='user%d'; fi
      mode=$load
      case $load in
        pop3) port=$port_pop3 ;;
        smtp) port=$port_smtp mode="smtp --imap-port $port_imap --rcpt user%d@example.test" ;;
        *) port=$port_imap ;;
      esac
      # shellcheck disable=SC2086
      line=$("$BENCH" --port "$port" --user "$user" --users "$USERS" --clients "$CLIENTS" \
        --seconds "$DURATION" $mode)
      echo "$load|$server|$run|$line" | tee -a "$WORK/results" >&2
    done
  done
done

python3 "$ROOT/bench/ratios.py" "$WORK/results" dovecot Dovecot

[ "$IDLE" -gt 0 ] || exit 0
echo
echo "| idle ($MESSAGES messages a mailbox) | connections | server total (KiB) | per connection (KiB) | fanout p50 (ms) | fanout max (ms) |"
echo "| --- | --- | --- | --- | --- | --- |"
for pair in "Satchel|$S_LINE" "Dovecot (Postfix for the message)|$D_LINE"; do
  name=${pair%%|*} line=${pair#*|}
  get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  echo "| $name | $(get connections) | $(get server_kib_after) | $(get per_connection_kib) | $(get fanout_p50_ms) | $(get fanout_max_ms) |"
done
