# shellcheck shell=bash
# Sourced by cluster-sim/test.sh and cluster-real/test.sh: run the tests on the cluster that
# runs, or start one (after removing a half-started one's pieces) and stop it on exit, unless
# told to keep it. Only a cluster this script started is ever stopped.
#
#   use_or_start_cluster CLUSTER_SCRIPT KEEP    (KEEP=1 leaves a started cluster running)

test_cluster_script=""
test_cluster_started=0
test_cluster_keep=0

# shellcheck disable=SC2329 # called by the trap
stop_started_cluster() {
  if [[ $test_cluster_started == 1 && $test_cluster_keep != 1 ]]; then bash "$test_cluster_script" down; fi
}

use_or_start_cluster() {
  test_cluster_script=$1
  test_cluster_keep=$2
  trap stop_started_cluster EXIT
  if ! bash "$test_cluster_script" status >/dev/null 2>&1; then
    bash "$test_cluster_script" down >/dev/null 2>&1 || true
    # Marked before `up`: an `up` that fails half way leaves pieces that `down` must remove.
    test_cluster_started=1
    bash "$test_cluster_script" up
  fi
}
