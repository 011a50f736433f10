# shellcheck shell=bash
# The check harness shared by charts/tests/run.sh and k8s-tests/static/run.sh. Source it after
# setting WORK (a scratch folder) and FILTER (run only checks whose name contains it; may be
# empty); then call `check NAME COMMAND...` for each check and `finish_checks` last.
# Each check prints PASS or FAIL with its time; a failed check's output is shown (a passing
# one's only with VERBOSE=1). finish_checks ends with "N passed, N failed" and returns non-zero
# when one failed.

passed=0
failed=0
failed_names=()

check() {
  local name=$1 start rc took log="$WORK/check.log"
  shift
  [[ -n "$FILTER" && "$name" != *"$FILTER"* ]] && return 0
  start=$(date +%s.%N)
  "$@" >"$log" 2>&1
  rc=$?
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }')
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
    printf 'PASS  %s (%s)\n' "$name" "$took"
    [[ "${VERBOSE:-0}" == 1 ]] && sed 's/^/      | /' "$log"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    printf 'FAIL  %s (%s)\n' "$name" "$took"
    sed 's/^/      | /' "$log" | tail -n 60
  fi
  return 0
}

finish_checks() {
  echo
  if [[ $failed -gt 0 ]]; then
    echo "failed checks:"
    printf '  - %s\n' "${failed_names[@]}"
  fi
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
}
