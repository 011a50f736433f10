#!/usr/bin/env bash
# make test-repeat: `make test` RUNS times in a row on a fresh clone of HEAD, with `make bench`
# running beside it the whole time, so a test that depends on timing or on having the machine
# to itself shows up as a failed run. Prints each run's time and outcome; exits 1 if any failed.
#
#   RUNS=5 (default)   how many runs of make test
#   BESIDE='make bench' (default)   what competes for the machine, restarted whenever it ends
set -euo pipefail

runs=${RUNS:-5}
beside=${BESIDE:-make bench}
if ! [[ $runs =~ ^[1-9][0-9]*$ ]]; then
  echo "test-repeat: RUNS=$runs: expected a whole number of at least 1" >&2
  exit 2
fi

repo=$(git -C "$(dirname "$0")/../.." rev-parse --show-toplevel)
work=$(mktemp -d /tmp/nodescale-test-repeat-XXXXXX)
clone=$work/clone
logs=$work/logs
mkdir -p "$logs"
git clone --quiet "$repo" "$clone"
echo "test-repeat: $(git -C "$clone" log -1 --format='%h %s') in $clone; logs in $logs"

(cd "$clone" && make deps tools) >"$logs/setup.log" 2>&1 || {
  echo "test-repeat: make deps tools failed; see $logs/setup.log" >&2
  exit 1
}

# The competitor loops until told to stop; its own failures are logged, not fatal.
(
  cd "$clone"
  i=0
  while [[ ! -e $work/stop ]]; do
    i=$((i + 1))
    echo "== beside run $i: $beside ($(date -u +%H:%M:%S))"
    bash -c "$beside" || echo "== beside run $i exited $?"
  done
) >"$logs/beside.log" 2>&1 &
beside_pid=$!
trap 'touch "$work/stop"; kill -- "$beside_pid" 2>/dev/null || true' EXIT

failed=0
declare -a summary
for i in $(seq 1 "$runs"); do
  echo "test-repeat: run $i/$runs started $(date -u +%H:%M:%S)"
  start=$(date +%s)
  if (cd "$clone" && make test) >"$logs/test-$i.log" 2>&1; then outcome=passed; else outcome=FAILED; failed=$((failed + 1)); fi
  seconds=$(($(date +%s) - start))
  summary+=("run $i: $outcome in $seconds s (log $logs/test-$i.log)")
  echo "test-repeat: ${summary[-1]}"
done

touch "$work/stop"
echo "test-repeat: waiting for the run beside to finish its current pass"
wait "$beside_pid" || true
trap - EXIT
echo
echo "make test x $runs with '$beside' beside it ($(grep -c '^== beside run' "$logs/beside.log") runs of it started):"
printf '  %s\n' "${summary[@]}"
[[ $failed -eq 0 ]] || { echo "test-repeat: $failed of $runs runs failed" >&2; exit 1; }
