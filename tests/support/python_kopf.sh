#!/usr/bin/env bash
# Installs Python Kopf from PyPI into a virtualenv kept outside the repo, reused when present.
# The benchmark (bench/kopf/) and the interop tests run the reference Kopf from here.
#
#   python_kopf.sh            ensure the plain venv (kopf 1.45.x, what `pip install kopf` gives)
#   python_kopf.sh --uvloop   ensure a second venv with kopf[uvloop] (Kopf's CLI then runs on uvloop)
#
# Last line printed: KOPF_VENV=<dir> (its bin/kopf and bin/python are the ones to run).
# Environment: KOPF_PY_CACHE (default ~/.cache/kopf-bench) holds the venvs; KOPF_PY_SERIES
# (default 1.45) is the release series wanted; PYTHON (default python3, must be >= 3.11).
set -euo pipefail

CACHE=${KOPF_PY_CACHE:-$HOME/.cache/kopf-bench}
SERIES=${KOPF_PY_SERIES:-1.45}
PYTHON=${PYTHON:-python3}
EXTRA=""
SUFFIX=""
case "${1:-}" in
  "") ;;
  --uvloop) EXTRA="[uvloop]"; SUFFIX="-uvloop" ;;
  *) echo "usage: python_kopf.sh [--uvloop]" >&2; exit 2 ;;
esac

say() { echo "python-kopf: $*" >&2; }

VENV="$CACHE/venv-$SERIES$SUFFIX"

installed_version() { # prints the installed kopf version, or nothing
  [ -x "$VENV/bin/python" ] || return 0
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kopf"))' 2>/dev/null || true
}

have_uvloop() {
  "$VENV/bin/python" -c 'import uvloop' >/dev/null 2>&1
}

current=$(installed_version)
if [ -n "$current" ] && { [ -z "$EXTRA" ] || have_uvloop; }; then
  say "reusing $VENV (kopf $current)"
  echo "KOPF_VENV=$VENV"
  exit 0
fi

"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
  { say "$PYTHON is older than 3.11; Kopf $SERIES needs 3.11+"; exit 1; }

# Ask the index which releases it serves: the series wanted, else the newest 1.4x (said aloud).
versions=$("$PYTHON" -m pip index versions kopf 2>/dev/null | sed -n 's/^Available versions: //p' | tr -d ' ' | tr ',' '\n')
[ -n "$versions" ] || { say "pip index versions kopf returned nothing (is PyPI reachable?)"; exit 1; }
pick=$(echo "$versions" | grep -E "^${SERIES//./\\.}\.[0-9]+$" | head -n 1 || true)
if [ -z "$pick" ]; then
  pick=$(echo "$versions" | grep -E '^1\.4[0-9]\.[0-9]+$' | head -n 1 || true)
  [ -n "$pick" ] || { say "PyPI serves neither kopf $SERIES.x nor any 1.4x release"; exit 1; }
  say "kopf $SERIES.x is not served; using the newest 1.4x release instead: $pick"
fi

rm -rf "$VENV"
mkdir -p "$CACHE"
say "creating $VENV with kopf$EXTRA==$pick"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "kopf$EXTRA==$pick" >&2
say "installed kopf $(installed_version) in $VENV"
echo "KOPF_VENV=$VENV"
