#!/usr/bin/env bash
# Makes (once per requirements file) the virtualenv of one Ansible the tests
# run, and prints its bin directory:
#   test/ansible/venv.sh kubespray   ansible-core 2.18 (kubespray's pin), Python 3.11+
#   test/ansible/venv.sh newest      ansible-core 2.21 and the linters, Python 3.12+
# The virtualenvs live under $EXTIP_CACHE_DIR or ~/.cache/extip; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:?usage: venv.sh kubespray|newest}"
req="$here/requirements-$name.txt"
[ -f "$req" ] || { echo "venv.sh: no $req" >&2; exit 2; }
case "$name" in
  newest) min=12 ;;
  *) min=11 ;;
esac
# A Python 3.<min> or newer: on PATH, or one of pyenv's.
python=""
for p in python3.13 python3.12 python3 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
  cmd="$(command -v "$p" 2>/dev/null || true)"
  [ -n "$cmd" ] || continue
  if "$cmd" -c "import sys; sys.exit(0 if sys.version_info >= (3, $min) else 1)" 2>/dev/null; then python="$cmd"; break; fi
done
if [ -z "$python" ]; then
  echo "venv.sh: the $name Ansible needs Python 3.$min or newer with venv; none found (looked for python3.13, python3.12, python3 and pyenv's)" >&2
  exit 3
fi
sum="$( (cat "$req"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-12)"
venv="${EXTIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/extip}/venv/$name-$sum"
# .complete marks a finished install: an interrupted one is made again.
if [ ! -f "$venv/.complete" ]; then
  echo "venv.sh: making the $name Ansible virtualenv ($("$python" --version)) from $(basename "$req")" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin"
