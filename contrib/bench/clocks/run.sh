#!/usr/bin/env bash
# SLA clock benchmark driver (contrib/bench/README.md, "clocks").
#   contrib/bench/clocks/run.sh [--build DIR] [--data-parent DIR] [--keep] [bench_clocks options]
# Builds vocd and bench_clocks in DIR (default: build), makes a fresh data folder on a real
# disk (default: /var/tmp; tmpfs is refused: vocd's commits must really sync), checks the
# free space and scales --cases down when the disk cannot hold the store (saying so), runs
# bench_clocks, and removes the data folder at the end (unless --keep).
set -euo pipefail
cd "$(dirname "$0")/../../.."

build=build
parent=${TMPDIR:-/var/tmp}
keep=0
args=()
cases=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --data-parent) parent=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --cases) cases=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
if grep -q '^VOC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "run.sh: $build is a sanitizer build; the figures would measure the sanitizers" >&2
  exit 1
fi
cmake --build "$build" -j 2 --target vocd bench_clocks >/dev/null

fstype=$(df --output=fstype "$parent" | tail -1 | tr -d ' ')
if [ "$fstype" = tmpfs ]; then
  echo "run.sh: $parent is tmpfs; use --data-parent on a real disk" >&2
  exit 1
fi
# About 6 KB of store per case (record, 3-4 events, indexes, deadline keys), and room to spare.
need_per_case=9000
avail=$(( $(df --output=avail -k "$parent" | tail -1) * 1024 ))
if [ $(( cases * need_per_case )) -gt "$avail" ]; then
  scaled=$(( avail / need_per_case ))
  echo "run.sh: only $(( avail >> 30 )) GiB free under $parent: scaling --cases down from" \
       "$cases to $scaled" >&2
  cases=$scaled
fi
echo "disk: $(df -h --output=source,fstype,avail,target "$parent" | tail -1)"

dir=$(mktemp -d "$parent/vocd-bench-clocks.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
"$build/contrib/bench/clocks/bench_clocks" --dir "$dir" --vocd "$build/daemon/vocd" \
  --cases "$cases" "${args[@]}"
echo "store size: $(du -sh "$dir/data" | cut -f1)"
