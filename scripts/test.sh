#!/usr/bin/env bash
# Runs the whole Satchel test suite on a fresh Debian machine with Rust:
# installs what the tests need, then builds and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite drives Satchel with.
need=()
command -v python3 >/dev/null || need+=(python3)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v mbsync >/dev/null || need+=(isync)
command -v fetchmail >/dev/null || need+=(fetchmail)
command -v swaks >/dev/null || need+=(swaks)
if ! command -v smtp-source >/dev/null; then
  # smtp-source (the load generator) comes with postfix; postfix itself stays unconfigured.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  need+=(postfix)
fi
command -v curl >/dev/null || need+=(curl)
# The webmail tests drive Debian's chromium (playwright-core never downloads a browser).
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
# The PostgreSQL backend's tests start a throwaway server (initdb, postgres).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need[@]}" >/dev/null
fi

# Python's own IMAP/POP3/SMTP clients drive the server in tests/; pytest runs them.
python3 -m pytest --version >/dev/null 2>&1 || python3 -m pip install -q pytest
command -v getmail >/dev/null || python3 -m pip install -q getmail6
python3 -c "import dkim" 2>/dev/null || python3 -m pip install -q dkimpy
# dkimpy verifies Ed25519 signatures (RFC 8463) only with PyNaCl.
python3 -c "import nacl" 2>/dev/null || python3 -m pip install -q pynacl
# /metrics is read with Prometheus' own text parser.
python3 -c "import prometheus_client" 2>/dev/null || python3 -m pip install -q prometheus_client
# Node clients (imapflow, playwright-core), pinned by tests/node/package-lock.json.
command -v npm >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q nodejs npm >/dev/null; }
(cd tests/node && npm ci --no-audit --no-fund --silent)

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
SATCHEL_BIN="$PWD/target/debug/satchel" python3 -m pytest -q tests/
# The whole socket suite again on the PostgreSQL backend (a throwaway server,
# tests/pg.py); the two-node, migration and TLS tests ran in the first pass,
# on databases (and a server) of their own.
SATCHEL_BIN="$PWD/target/debug/satchel" SATCHEL_TEST_BACKEND=postgres \
  python3 -m pytest -q tests/ --ignore=tests/test_postgres_nodes.py --ignore=tests/test_migrate.py \
  --ignore=tests/test_postgres_tls.py
