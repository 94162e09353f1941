#!/usr/bin/env bash
# Builds the C example and test suite with gcc against include/chatstore.h and
# the built library, and runs them under valgrind (no errors, no leaks).
# --fair-sched=yes: sled spins on atomics while its threads hand work over;
# valgrind's default scheduler lets such spins run a whole timeslice (60x slower).
# Possible leaks are not counted: sled's global thread pool outlives main.
# Usage: bindings/c/run-tests.sh [LIB_DIR]   (default: target/debug)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
libdir="${1:-$root/target/debug}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for prog in example test_chatstore; do
  gcc -std=c11 -Wall -Wextra -Werror -g -I "$root/include" "$root/bindings/c/$prog.c" \
    -L "$libdir" -lchatstore_ffi -lpthread -o "$out/$prog"
done
# C++ compilers accept the header too.
echo '#include "chatstore.h"
int main() { return cs_abi_version() == 1 ? 0 : 1; }' > "$out/cpp.cc"
g++ -I "$root/include" "$out/cpp.cc" -L "$libdir" -lchatstore_ffi -o "$out/cpp"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$out/cpp"
seeds="$root/crates/chatstore/data/seeds.jsonl"
vg=(valgrind --quiet --fair-sched=yes --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=1)
"${vg[@]}" "$out/example" "$out/example.db" "$seeds" > "$out/example.out"
grep -q '"total":3' "$out/example.out"
# A copy of the newer-format fixture: opening a store may write to it.
cp -r "$root/tests/fixtures/newer-format.db" "$out/newer.db"
# A sled store nobody holds, for the test to lock from outside (the CLI's
# store, released when it exits).
"$libdir/chatstore" import --backend sled --db "$out/closed.db" "$seeds" 2>/dev/null
"${vg[@]}" "$out/test_chatstore" "$out/test.db" "$seeds" "$out/newer.db" "$out/closed.db"
