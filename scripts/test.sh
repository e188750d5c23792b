#!/usr/bin/env bash
# The whole suite: the fleet's tests (ansible-playbook over sshd to three hosts, mostly waiting on
# their processes) run in a second pytest beside the rest, and what they printed follows the rest's.
# Usage: scripts/test.sh PYTHON [pytest options]
set -uo pipefail
python=$1
shift
fleet_log=$(mktemp)
trap 'rm -f "$fleet_log"' EXIT
"$python" -m pytest -q -p no:cacheprovider "$@" tests/test_ansible.py > "$fleet_log" 2>&1 &
fleet=$!
"$python" -m pytest -q "$@" --ignore=tests/test_ansible.py
rest=$?
wait "$fleet"
fleet_status=$?
echo "--- tests/test_ansible.py, run beside the rest:"
cat "$fleet_log"
if [ "$rest" -ne 0 ]; then exit "$rest"; fi
exit "$fleet_status"
