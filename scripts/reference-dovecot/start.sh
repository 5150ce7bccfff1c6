#!/usr/bin/env bash
# Starts Debian's Dovecot on loopback as the reference Satchel is compared
# with: the fixtures in tests/fixtures/dovecot/ were recorded from it, and
# every figure in bench/ is a ratio against it, measured in the same run.
#
#   IMAP 127.0.0.1:$IMAP_PORT (10143), POP3 127.0.0.1:$POP3_PORT (10110),
#   no TLS, Maildir, users user1 .. user$USERS (200) with password "pass",
#   and Satchel's six mailboxes (INBOX, Junk, Possible Junk, Sent, Drafts,
#   Trash) created for each.
#
# Knobs (environment):
#   DOVECOT_REF_DIR  where its config, mail, logs and pid live (./.dovecot-ref)
#   PASS_SCHEME      PLAIN (cheap, default) or ARGON2ID (what Satchel
#                    stores: fair for login-heavy loads), or any scheme
#                    `doveadm pw -l` lists
#   AUTH_CACHE=1     Dovecot's authentication cache, as production runs it
#                    (slower than none with Argon2id here: bench/RESULTS.md)
#   MAIL_FSYNC       optimized (Dovecot's default: flag changes are not
#                    fsynced), always (every change, as Satchel does), never
#   MAX_CONNECTIONS  lifts the per-user-and-address, process and client
#                    limits to this many, for idle and flood loads
#   SASL_SOCKET      also serves Dovecot's authentication on this Unix
#                    socket (mode 0666), for Postfix's smtpd_sasl_type =
#                    dovecot in the sending benchmark
# Stop it with stop.sh (same DOVECOT_REF_DIR). Needs root (mail is owned by
# uid 5000); installs dovecot-imapd and dovecot-pop3d when they are missing.
set -euo pipefail

dir=$(realpath -m "${DOVECOT_REF_DIR:-./.dovecot-ref}")
imap_port=${IMAP_PORT:-10143}
pop3_port=${POP3_PORT:-10110}
users=${USERS:-200}
scheme=${PASS_SCHEME:-PLAIN}
fsync=${MAIL_FSYNC:-optimized}
vmail=5000

case "$fsync" in
  optimized | always | never) ;;
  *) echo "start.sh: MAIL_FSYNC is '$fsync'; use optimized, always or never" >&2; exit 2 ;;
esac
if ! command -v dovecot >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q dovecot-imapd dovecot-pop3d >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q dovecot-imapd dovecot-pop3d >/dev/null; }
fi

pidfile=$dir/run/ref.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "reference dovecot already running (pid $(cat "$pidfile"), state $dir)"
  exit 0
fi
mkdir -p "$dir/run" "$dir/log" "$dir/mail"
chown "$vmail:$vmail" "$dir/mail"

# One passwd-file serves as passdb and userdb.
if [ "$scheme" = PLAIN ]; then
  hash='{PLAIN}pass'
else
  hash=$(doveadm pw -s "$scheme" -p pass)
fi
: >"$dir/users"
for i in $(seq 1 "$users"); do
  printf 'user%d:%s:%d:%d::%s/mail/user%d::\n' "$i" "$hash" "$vmail" "$vmail" "$dir" "$i" >>"$dir/users"
done

extra=""
auth_service=""
# Dovecot 2.3's cache keeps the passdb's hash, not a verified password: a
# cached login still runs the hash, in the auth process (seen at 96% CPU,
# one core). The worker option, which production sets, is set here too, but
# with this passwd-file passdb it did not help: 9.6 IMAP logins/s with the
# cache against 55.9 without it (Argon2id, 2026-12-06, bench/RESULTS.md).
[ "${AUTH_CACHE:-0}" = 1 ] && extra+=$'auth_cache_size = 10M\nauth_cache_verify_password_with_worker = yes\n'
if [ -n "${SASL_SOCKET:-}" ]; then
  auth_service+="  unix_listener ${SASL_SOCKET} {
    mode = 0666
  }
"
fi
if [ -n "${MAX_CONNECTIONS:-}" ]; then
  n=$MAX_CONNECTIONS
  auth_service+="  client_limit = $((n * 4))
"
  extra+="mail_max_userip_connections = $n
default_process_limit = $n
default_client_limit = $n
default_vsz_limit = 0
service anvil {
  client_limit = $((n * 4))
}
service imap {
  process_limit = $n
}
service pop3 {
  process_limit = $n
}
"
  ulimit -n $((n * 4 + 1024)) 2>/dev/null || true
  # Each IMAP process in IDLE takes an inotify instance; past the kernel's
  # per-user limit (128 by default) Dovecot falls back to polling every
  # 30 seconds, which is not what it does in production.
  inotify=/proc/sys/fs/inotify/max_user_instances
  if [ -w "$inotify" ] && [ "$(cat "$inotify")" -lt $((n + 1024)) ]; then
    echo $((n + 1024)) >"$inotify"
  fi
fi
# One service auth block for both knobs.
[ -n "$auth_service" ] && extra+="service auth {
${auth_service}}
"

cat >"$dir/dovecot.conf" <<CONF
# Written by scripts/reference-dovecot/start.sh; rewritten at every start.
instance_name = satchel-reference
protocols = imap pop3
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/run/state
log_path = $dir/log/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_fsync = $fsync
first_valid_uid = 1000
mail_uid = $vmail
mail_gid = $vmail
mail_home = $dir/mail/%u
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
$extra
passdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox "Possible Junk" {
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    port = 0
  }
}
service doveadm {
  inet_listener {
    port = 0
  }
}
CONF

nohup dovecot -F -c "$dir/dovecot.conf" >>"$dir/log/foreground.out" 2>&1 &
echo $! >"$pidfile"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 150); do
  if listening "$imap_port" && listening "$pop3_port"; then
    echo "reference dovecot up: imap 127.0.0.1:$imap_port pop3 127.0.0.1:$pop3_port pid $(cat "$pidfile") state $dir"
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
echo "start.sh: the reference dovecot did not come up; its log:" >&2
tail -n 20 "$dir/log/"* >&2 || true
exit 1
