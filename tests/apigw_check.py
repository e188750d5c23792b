"""Read an esbgen export-apigw project with apigw-manager's own code and print what it makes of it (JSON).

Run with the Python of a virtualenv that has apigw-manager (``make test`` builds ``.venv-apigw``), from
a copy of the project: ``python apigw_check.py DIR``. Nothing reaches the network: each command's
definition is loaded the way the command loads it (``get_definition``), and the docs folder is archived
the way ``sync_resource_docs_by_archive`` archives it.
"""

import importlib
import io
import json
import os
import sys
import zipfile


def main(folder: str) -> None:
    os.chdir(folder)
    sys.path.insert(0, folder)
    os.environ["DJANGO_SETTINGS_MODULE"] = "apigw_settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the project runs apigw-manager's own models
    from apigw_manager.apigw.helper import Definition
    from apigw_manager.apigw.utils import ZipArchiveFile

    result = {"spec_version": Definition.load_from("definition.yaml", {}).spec_version}
    for command, file in [
        ("sync_apigw_config", "definition.yaml"),
        ("sync_apigw_stage", "definition.yaml"),
        ("sync_apigw_resources", "resources.yaml"),
        ("sync_resource_docs_by_archive", "definition.yaml"),
        ("create_version_and_release_apigw", "definition.yaml"),
        ("grant_apigw_permissions", "definition.yaml"),
    ]:
        module = importlib.import_module(f"apigw_manager.apigw.management.commands.{command}")
        cmd = module.Command()
        result[command] = cmd.get_definition(define=[], file=file, namespace=cmd.default_namespace)
    basedir = (result["sync_resource_docs_by_archive"] or {}).get("basedir")
    result["docs_dir_exists"] = bool(basedir) and os.path.isdir(basedir)
    result["archive"] = None  # no docs named: the project has no docs step
    if basedir:
        buffer = io.BytesIO()
        ZipArchiveFile.archive(basedir, buffer)
        with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
            result["archive"] = sorted(archive.namelist())
    print(json.dumps(result, ensure_ascii=False, sort_keys=True, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
