#!/usr/bin/env bash
# A virtualenv with one of the ESB's Djangos on its own interpreter, for the tests of plugins/esbgen-django:
#   scripts/django-venv.sh VENV PYTHON DJANGO_VERSION
# (the legacy ESB's Django 1.8.19 on Python 2.7, the later ESB's 1.11.29 on Python 3.6). virtualenv (<20.22,
# the last to create Python 2.7 and 3.6 environments; $VIRTUALENV) makes it, with a pip that still runs there.
set -euo pipefail
VENV=$1
PYTHON=$2
DJANGO=$3
VIRTUALENV=${VIRTUALENV:-virtualenv}
if [ ! -x "$PYTHON" ]; then
    echo "$PYTHON is missing: the tests of manage.py esbgen run Django $DJANGO on it (pyenv install it, or give its path)" >&2
    exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rm -rf "$VENV"
if ! "$VIRTUALENV" -q -p "$PYTHON" "$VENV" >"$log" 2>&1 ||
   ! "$VENV/bin/python" -m pip install -q --no-python-version-warning "Django==$DJANGO" >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
"$VENV/bin/python" -c "import django; assert django.get_version() == '$DJANGO', django.get_version()"
touch "$VENV/.esbgen-ready"
echo "made $VENV (Django $DJANGO on $("$VENV/bin/python" --version 2>&1))"
