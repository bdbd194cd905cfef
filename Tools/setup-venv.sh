#!/usr/bin/env bash
# Create Tools/.venv (if missing) and install Tools/requirements.txt into it.
# Idempotent: a stamp file records the sha256 of requirements.txt; when it matches
# and the venv's python runs, the script does nothing and prints nothing.
#
# Usage: Tools/setup-venv.sh        (then use Tools/.venv/bin/python)
# Env:   PYTHON=python3.x to choose the interpreter; UNETC_VENV=dir to override the venv path.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${UNETC_VENV:-$tools_dir/.venv}"
req="$tools_dir/requirements.txt"
stamp="$venv/.requirements.stamp"
python="${PYTHON:-python3}"

hash_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$python" -c 'import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

want="$(hash_of "$req")"

venv_ok() { [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1; }

if venv_ok && [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

if ! venv_ok; then
    echo "setup-venv: creating $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

echo "setup-venv: installing $(basename "$req")" >&2
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
printf '%s\n' "$want" > "$stamp"
echo "setup-venv: ready ($venv)" >&2
