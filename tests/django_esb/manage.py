#!/usr/bin/env python
"""manage.py of the test ESB project: ``python tests/django_esb/manage.py esbgen ...``."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_esb.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
