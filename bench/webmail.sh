#!/bin/bash
# The webmail, Satchel against Roundcube on the same machine in one run
# (A B A B ...): each of 10 users has the same 10,000-message INBOX; each
# client logs in once through the login form, then asks for the message
# list's first page, or for message pages (a different message each
# time), until time is up. Prints each figure as Satchel/Roundcube with
# min, median and max over the runs.
#
#   bench/webmail.sh     # USERS=10 CLIENTS=10 MESSAGES=10000 DURATION=10 RUNS=3
#   PASS_SCHEME=PLAIN bench/webmail.sh
#
# Roundcube logs in to IMAP afresh on every request it serves, so what
# Dovecot's password check costs is part of each of its pages. By default
# Dovecot checks Satchel's own Argon2id hashes (the same cost Satchel pays
# once per web login); PASS_SCHEME=PLAIN shows Roundcube without that cost.
#
# What answers each request:
#   Satchel: its own webmail (the http door) reading its embedded store.
#   Roundcube 1.6 (Debian's, SQLite for its own data, no caches: its
#     defaults) under Apache with mod_php and opcache, reading the
#     reference Dovecot over IMAP on loopback (the same Argon2id hashes).
#     Its list is the AJAX call its page makes (JSON of 50 rows); its
#     message page is _action=show, the full page.
# Needs root, cargo, python3, and Debian's roundcube, roundcube-sqlite3,
# apache2 and libapache2-mod-php (installed when missing); Dovecot comes
# from scripts/reference-dovecot/start.sh. The bench points Roundcube at
# the reference Dovecot for the run and puts its config back afterwards.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REFERENCE=$ROOT/scripts/reference-dovecot
USERS=${USERS:-10} CLIENTS=${CLIENTS:-10} MESSAGES=${MESSAGES:-10000}
DURATION=${DURATION:-10} RUNS=${RUNS:-3}
WORK=$(mktemp -d /tmp/satchel-webmail.XXXXXX)
chmod 755 "$WORK"
S_HTTP=18080 S_IMAP=18143 D_IMAP=10143 D_POP3=10110
export DOVECOT_REF_DIR=$WORK/dovecot
RC_CONFIG=/etc/roundcube/config.inc.php
# Debian ships the /roundcube alias commented out.
RC_ALIAS=/etc/apache2/conf-enabled/satchel-bench-roundcube.conf

if ! dpkg -s roundcube roundcube-sqlite3 apache2 libapache2-mod-php >/dev/null 2>&1; then
  echo "roundcube-core roundcube/dbconfig-install boolean true" | debconf-set-selections
  echo "roundcube-core roundcube/database-type select sqlite3" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q roundcube roundcube-sqlite3 apache2 libapache2-mod-php >/dev/null
fi

cleanup() {
  [ -n "${SATCHEL_PID:-}" ] && kill "$SATCHEL_PID" 2>/dev/null || true
  apache2ctl stop >/dev/null 2>&1 || true
  rm -f "$RC_ALIAS"
  [ -f "$WORK/config.inc.php.orig" ] && cp "$WORK/config.inc.php.orig" "$RC_CONFIG"
  bash "$REFERENCE/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
cargo build --release -q -p satchel -p satchel-bench
SAT=$ROOT/target/release/satchel BENCH=$ROOT/target/release/satchel-bench
python3 "$ROOT/tests/data/gen_mbox.py" "$WORK/mail.mbox" "$MESSAGES" >/dev/null

# Satchel: user1..N@example.test, each with the mbox in INBOX.
cat > "$WORK/satchel.toml" <<CONF
hostname = "mail.example.test"
domains = ["example.test"]
[listen]
http = ["127.0.0.1:$S_HTTP"]
imap = ["127.0.0.1:$S_IMAP"]
CONF
sat() { "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" "$@"; }
for i in $(seq 1 "$USERS"); do
  echo pass | sat user add "user$i@example.test" --password-stdin >/dev/null
  sat import "user$i@example.test" --mailbox INBOX "$WORK/mail.mbox" >/dev/null
done
: > "$WORK/dns.txt"
SATCHEL_DNS_STATIC=$WORK/dns.txt "$SAT" --config "$WORK/satchel.toml" --data "$WORK/satchel" serve >"$WORK/satchel.log" 2>&1 &
SATCHEL_PID=$!
for _ in $(seq 1 100); do
  grep -q "^http " "$WORK/satchel.log" && break
  kill -0 "$SATCHEL_PID" 2>/dev/null || { echo "satchel did not start:" >&2; cat "$WORK/satchel.log" >&2; exit 1; }
  sleep 0.1
done

# Dovecot: the same messages as Maildir; Satchel's own hashes unless
# PASS_SCHEME says otherwise.
sat export user1@example.test --mailbox INBOX --format maildir "$WORK/maildir" >/dev/null
SCHEME=${PASS_SCHEME:-ARGON2ID}
PASS_SCHEME=$SCHEME USERS=$USERS IMAP_PORT=$D_IMAP POP3_PORT=$D_POP3 \
  bash "$REFERENCE/start.sh" >/dev/null
for i in $(seq 1 "$USERS"); do
  mkdir -p "$DOVECOT_REF_DIR/mail/user$i/Maildir"
  cp -r "$WORK/maildir/cur" "$WORK/maildir/new" "$WORK/maildir/tmp" "$DOVECOT_REF_DIR/mail/user$i/Maildir/"
done
chown -R 5000:5000 "$DOVECOT_REF_DIR/mail"
[ "$SCHEME" = ARGON2ID ] && python3 "$ROOT/bench/dovecot_hashes.py" "$WORK/satchel/index.sqlite" "$DOVECOT_REF_DIR/users"

# Roundcube on the reference Dovecot; no login rate limit (the clients log
# in at once from one address).
cp "$RC_CONFIG" "$WORK/config.inc.php.orig"
cat > "$RC_CONFIG" <<CONF
<?php
\$config = [];
include("/etc/roundcube/debian-db-roundcube.php");
\$config['imap_host'] = 'localhost:$D_IMAP';
\$config['smtp_host'] = '';
\$config['des_key'] = '$(head -c 18 /dev/urandom | base64)';
\$config['plugins'] = [];
\$config['skin'] = 'elastic';
\$config['login_rate_limit'] = 0;
\$config['session_lifetime'] = 60;
\$config['enable_spellcheck'] = false;
CONF
echo "Alias /roundcube /var/lib/roundcube/public_html" > "$RC_ALIAS"
apache2ctl start 2>/dev/null
for _ in $(seq 1 50); do
  curl -sf -o /dev/null http://127.0.0.1/roundcube/ && break
  sleep 0.2
done

one() { # app page seconds
  local port=$S_HTTP user='user%d@example.test'
  [ "$1" = roundcube ] && port=80 user='user%d'
  "$BENCH" --port "$port" --user "$user" --users "$USERS" --clients "$CLIENTS" \
    --seconds "$3" web --app "$1" --page "$2" --messages "$MESSAGES"
}
# Warm-up, not counted: Dovecot indexes each Maildir on first use, and
# both servers fill their caches.
for app in satchel roundcube; do
  for page in list message; do one $app $page 3 >/dev/null; done
done

: > "$WORK/results"
for page in list message; do
  for run in $(seq 1 "$RUNS"); do
    for app in satchel roundcube; do
      line=$(one $app $page "$DURATION")
      echo "$page|$app|$run|$line" | tee -a "$WORK/results" >&2
    done
  done
done

python3 "$ROOT/bench/ratios.py" "$WORK/results" roundcube Roundcube
