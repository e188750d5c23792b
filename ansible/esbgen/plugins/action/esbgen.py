# -*- coding: utf-8 -*-
# MIT License (see the esbgen repository)
"""Action plugin of esbgen.esb.esbgen: plan files live on the controller.

``plan`` (apply-plan) is copied from the controller into the task's temporary
folder on the host; ``plan_out`` is written on the host's temporary folder and
brought back to the controller path, private (0600); when that path is a folder,
the plan is named there by its id (``<sha256>.plan.json``); a path ending in ``/``
is such a folder, made private (0700) when missing. ``plan_pointer``, a file on the
controller, then gets the plan's id (0600): which plan a fleet has, for later runs. Neither copy is a
change of the host, so neither makes the task ``changed``. With
``remote_plan: true`` both are paths on the host and are left to the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args.copy()
        remote = boolean(args.get("remote_plan", False), strict=False)
        local_out = None
        pointer = args.pop("plan_pointer", None)
        try:
            tmpdir = self._connection._shell.tmpdir
            if args.get("plan") and not remote:
                source = self._find_needle("files", os.path.expanduser(args["plan"]))
                remote_plan = self._connection._shell.join_path(tmpdir, "esbgen-plan.json")
                self._transfer_file(source, remote_plan)
                self._fixup_perms2((tmpdir, remote_plan), execute=False)
                args["plan"] = remote_plan
            if args.get("plan_out") and not remote:
                local_out = os.path.abspath(os.path.expanduser(args["plan_out"]))
                if args["plan_out"].endswith("/") and not self._task.check_mode:
                    os.makedirs(local_out, mode=0o700, exist_ok=True)
                if not os.path.isdir(local_out) and not os.path.isdir(os.path.dirname(local_out)):
                    raise AnsibleActionFail("plan_out: the folder of %s does not exist on the controller" % local_out)
                args["plan_out"] = self._connection._shell.join_path(tmpdir, "esbgen-plan-out.json")
                self._fixup_perms2((tmpdir,), execute=False)
            result.update(self._execute_module(module_name="esbgen.esb.esbgen", module_args=args, task_vars=task_vars))
            if local_out and not result.get("failed"):
                result["plan_out"], result["plan_id"] = self._fetch_plan(args["plan_out"], local_out)
                if pointer and not self._task.check_mode:
                    self._write_private(os.path.abspath(os.path.expanduser(pointer)), result["plan_id"] + "\n")
            return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    @staticmethod
    def _write_private(path, text):
        handle, partial = tempfile.mkstemp(prefix=".esbgen-plan.", dir=os.path.dirname(path))
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(partial, path)

    def _fetch_plan(self, remote_path, local_path):
        """Bring the plan to the controller (0600), replacing any older one at once (never a half-written file).

        Returns its path and its id; a folder gets the plan as ``<id>.plan.json``."""
        folder = local_path if os.path.isdir(local_path) else os.path.dirname(local_path)
        handle, partial = tempfile.mkstemp(prefix=".esbgen-plan.", dir=folder)  # mkstemp makes it 0600
        os.close(handle)
        try:
            self._connection.fetch_file(remote_path, partial)
            with open(partial, "rb") as plan:
                plan_id = hashlib.sha256(plan.read()).hexdigest()
            if local_path == folder:
                local_path = os.path.join(folder, "%s.plan.json" % plan_id)
            os.chmod(partial, 0o600)  # private, as esbgen writes it on the host
            os.replace(partial, local_path)
        except Exception as error:
            if os.path.exists(partial):
                os.unlink(partial)
            raise AnsibleActionFail("fetching the plan %s from the host failed: %s" % (remote_path, error))
        return local_path, plan_id
