#!/usr/bin/env bash
# A virtualenv with the later ESB's Django (1.11.29) on this machine's Python, for the tests of
# plugins/esbgen-django. Django 1.11 runs on Python 3.10+ with three small shims loaded before it
# from a .pth file (the ESB itself is never edited): the collections.abc names on collections,
# gettext.translation without its removed codeset argument, and a no-op set_output_charset.
set -euo pipefail
VENV=${1:-.venv-django111}
PYTHON=${PYTHON:-python3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check Django==1.11.29 >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$site/esbgen_django111_shims.py" <<'PY'
"""Let Django 1.11 run on this Python: three shims, loaded before Django by esbgen_django111_shims.pth."""
import collections
import collections.abc
import gettext

for _name in collections.abc.__all__:
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

_translation = gettext.translation


def translation(domain, localedir=None, languages=None, class_=None, fallback=False, codeset=None):
    return _translation(domain, localedir, languages, class_, fallback)


gettext.translation = translation
gettext.NullTranslations.set_output_charset = lambda self, charset: None
PY
echo "import esbgen_django111_shims" > "$site/esbgen_django111_shims.pth"
"$VENV/bin/python" -c "import django; assert django.get_version() == '1.11.29', django.get_version()"
touch "$VENV/.esbgen-ready"
echo "made $VENV (Django 1.11.29 on $("$VENV/bin/python" --version 2>&1))"
