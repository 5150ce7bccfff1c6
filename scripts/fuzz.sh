#!/usr/bin/env bash
# Fuzzes every target in fuzz/ for SECONDS each (default 60) on the stable
# toolchain, without cargo-fuzz: the targets are built with libFuzzer's
# coverage instrumentation (sancov) and run on a corpus under fuzz/corpus,
# seeded from the test suite's inputs (fuzz/seed.py) the first time.
# A crash leaves its input in fuzz/artifacts/TARGET/ and fails the script;
# the executions of each target are printed.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
targets=("$@")
# Every [[bin]] of fuzz/Cargo.toml unless named.
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v satchel-fuzz)

# The workspace's versions of the crates both use (cargo adds the rest).
[ -f Cargo.lock ] || cp ../Cargo.lock Cargo.lock
triple=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps the flags off build scripts and proc macros; debug
# assertions and overflow checks come from fuzz/Cargo.toml's profile.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing" \
  cargo build --release --target "$triple" --target-dir target/fuzz --bins

python3 seed.py corpus "${targets[@]}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  echo "fuzzing $t for ${seconds}s"
  "target/fuzz/$triple/release/$t" -max_total_time="$seconds" -rss_limit_mb=1024 \
    -max_len=200000 -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" 2>&1 |
    grep -E '^(Done|stat::number_of_executed_units|==|SUMMARY)' || true
  if [ "$(ls "artifacts/$t" | wc -l)" -gt "$before" ]; then
    echo "fuzz: $t crashed; inputs in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
