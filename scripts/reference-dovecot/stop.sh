#!/usr/bin/env bash
# Stops the reference Dovecot that start.sh started in DOVECOT_REF_DIR.
set -u
dir=$(realpath -m "${DOVECOT_REF_DIR:-./.dovecot-ref}")
pidfile=$dir/run/ref.pid
if [ ! -f "$pidfile" ]; then
  echo "reference dovecot not running (no $pidfile)"
  exit 0
fi
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$pidfile"
echo "reference dovecot stopped"
