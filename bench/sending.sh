#!/bin/bash
# The outgoing leg, Satchel against Postfix on the same machine in one run
# (A B A B ...): clients on a submission port log in once per connection
# (AUTH PLAIN) and send to remote addresses; each server relays to the same
# sink (inside satchel-bench, playing the remote MX on loopback), and the
# figure is messages per second from the first submission until the sink
# holds every accepted one. Prints each figure as Satchel/Postfix with min,
# median and max over the runs.
#
#   bench/sending.sh     # USERS=10 CLIENTS=10 DURATION=10 RUNS=3
#
# What each side does per message:
#   Satchel: AUTH through its own Argon2id check; sender and From: checked
#     against the account; the Sent copy filed (through the outgoing Sieve
#     phase) and fsynced; DKIM-signed twice (Ed25519 and RSA-2048); queued
#     (blob and index fsynced) before 250; relayed to the smarthost.
#   Postfix 3.7: AUTH through Dovecot's auth (smtpd_sasl_type = dovecot,
#     the same Argon2id hashes, no auth cache); queue file fsynced before
#     250 (Postfix's default); relayed to the relayhost. No Sent copy and no
#     DKIM (Postfix has neither without a milter): it does less work.
# Needs root, cargo, python3, Postfix (apt-get install postfix) and
# Dovecot (scripts/reference-dovecot/start.sh installs it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REFERENCE=$ROOT/scripts/reference-dovecot
USERS=${USERS:-10} CLIENTS=${CLIENTS:-10} DURATION=${DURATION:-10} RUNS=${RUNS:-3}
WORK=$(mktemp -d /tmp/satchel-sending.XXXXXX)
chmod 755 "$WORK"
S_SUB=12587 P_SUB=10587 SINK=12525
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

# Satchel: user1..N@example.test, relaying everything to the sink.
cat > "$WORK/satchel.toml" <<CONF
hostname = "mail.example.test"
domains = ["example.test"]
[listen]
submission = ["127.0.0.1:$S_SUB"]
[relay]
smarthost = "127.0.0.1:$SINK"
[queue]
retry = ["1s"]
[submission]
max_per_hour = 0
[limits]
smtp_per_ip = 1000
CONF
sat() { "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" "$@"; }
for i in $(seq 1 "$USERS"); do
  echo pass | sat user add "user$i@example.test" --password-stdin >/dev/null
done
# The first message of a domain makes its DKIM keys: not part of the run.
sat dkim show example.test >/dev/null
: > "$WORK/dns.txt"
SATCHEL_DNS_STATIC=$WORK/dns.txt "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" serve >"$WORK/satchel.log" 2>&1 &
SATCHEL_PID=$!
for _ in $(seq 1 100); do
  grep -q "^submission " "$WORK/satchel.log" && break
  kill -0 "$SATCHEL_PID" 2>/dev/null || { echo "satchel did not start:" >&2; cat "$WORK/satchel.log" >&2; exit 1; }
  sleep 0.1
done

# Dovecot only as Postfix's SASL server, with Satchel's own hashes.
SOCKET=$DOVECOT_REF_DIR/run/auth-postfix
PASS_SCHEME=ARGON2ID USERS=$USERS SASL_SOCKET=$SOCKET IMAP_PORT=10143 POP3_PORT=10110 \
  bash "$REFERENCE/start.sh" >/dev/null
python3 "$ROOT/bench/dovecot_hashes.py" "$WORK/satchel/index.sqlite" "$DOVECOT_REF_DIR/users"

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
myhostname = mail.example.test
mydestination =
mynetworks =
relayhost = [127.0.0.1]:$SINK
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $SOCKET
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtp_tls_security_level = none
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = $WORK
maillog_file = $PF/maillog
biff = no
CONF
cat > "$PF/conf/master.cf" <<CONF
127.0.0.1:$P_SUB inet n - n - - smtpd
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
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
script -qc "postfix -c $PF/conf start" /dev/null >&2 || { cat "$PF/maillog" >&2; exit 1; }
sleep 1

: > "$WORK/results"
for run in $(seq 1 "$RUNS"); do
  for server in satchel postfix; do
    if [ $server = satchel ]; then port=$S_SUB user='user%d@example.test'
    else port=$P_SUB user='user%d'; fi
    line=$("$BENCH" --port "$port" --user "$user" --users "$USERS" --clients "$CLIENTS" \
      --seconds "$DURATION" submit --sink-port "$SINK" --sender 'user%d@example.test')
    echo "submit|$server|$run|$line" | tee -a "$WORK/results" >&2
  done
done

python3 "$ROOT/bench/ratios.py" "$WORK/results" postfix Postfix
