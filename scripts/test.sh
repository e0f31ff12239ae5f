#!/bin/sh
# The README's test command: set the host up (idempotent), then run the whole suite.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
sh "$here/scripts/setup.sh"
cd "$here"
set +e
"$here/.venv/bin/pytest" -q -p no:cacheprovider "$@"
rc=$?
[ "$rc" -eq 5 ] && { echo "test: no tests were collected" >&2; exit 1; }
exit "$rc"
