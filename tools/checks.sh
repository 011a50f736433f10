# shellcheck shell=bash
# The check harness shared by charts/tests/run.sh and k8s-tests/static/run.sh. Source it after
# setting WORK (a scratch folder) and FILTER (run only checks whose name contains it; may be
# empty); then call `check NAME COMMAND...` for each check and `finish_checks` last.
# Each check prints PASS or FAIL with its time; a failed check's output is shown (a passing
# one's only with VERBOSE=1). A check that cannot run here goes through `cannot_run ID NAME
# WHY`: it fails with WHY unless CHECKS_SKIP (comma-separated ids) names it, and then it is
# reported as SKIP with WHY, never silently. finish_checks ends with "N passed, N failed,
# N skipped" and returns non-zero when one failed.

passed=0
failed=0
skipped=0
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

cannot_run() {
  local id=$1 name=$2 why=$3
  [[ -n "$FILTER" && "$name" != *"$FILTER"* ]] && return 0
  if [[ ",${CHECKS_SKIP:-}," == *",$id,"* ]]; then
    skipped=$((skipped + 1))
    printf 'SKIP  %s: %s (CHECKS_SKIP=%s)\n' "$name" "$why" "$CHECKS_SKIP"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    printf 'FAIL  %s: cannot run here: %s (CHECKS_SKIP=%s skips it, saying so)\n' "$name" "$why" "$id"
  fi
}

finish_checks() {
  echo
  if [[ $failed -gt 0 ]]; then
    echo "failed checks:"
    printf '  - %s\n' "${failed_names[@]}"
  fi
  echo "$passed passed, $failed failed, $skipped skipped"
  [[ $failed -eq 0 ]]
}
