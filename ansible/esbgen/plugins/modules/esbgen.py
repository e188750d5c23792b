#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see the esbgen repository)
"""Ansible module: run one esbgen command on an ESB host, with its outcome as Ansible reports it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: esbgen
short_description: Run an esbgen change (clone, new, retarget, register, swap, undo, apply-plan), or check or verify, on an ESB host
description:
  - Runs the C(esbgen) installed on the host, with the same arguments as its command line, and
    reports what it did as Ansible does. esbgen shows its plan first, holds it to the ESB's rules and
    applies it atomically (a journal in the ESB root), so a refused change leaves the host as it was.
  - The esbgen command is O(executable), else C($ESBGEN_EXECUTABLE) in the host's environment, else
    C(esbgen) on the host's C(PATH), as the C(manage.py esbgen) shim finds it. The module needs
    nothing but Python on the host.
  - I(changed) is false when the host is already as asked (esbgen's "Nothing to do"), and always for
    C(check) and C(verify), which change nothing.
  - When esbgen refuses, the task fails with esbgen's one line in I(msg) and its error class in
    I(error_class) (C(Refused), C(UsageError), C(PluginError), C(RolledBack), C(RollbackIncomplete),
    C(StepFailed), C(Interrupted), or their base C(EsbgenError)); I(tree_state) says what the run left
    the host's ESB in (C(unchanged), C(rolled back), C(rollback incomplete), C(applied)).
  - O(plan) and O(plan_out) are files on the controller (the action plugin moves them), unless
    O(remote_plan) is true.
version_added: "0.1.0"
author: esbgen maintainers
options:
  command:
    description:
      - The esbgen command. C(check) changes nothing and fails when the ESB's rules find a problem.
      - C(verify) O(name) changes nothing and fails when a channel of the system has a problem (its host
        setting undefined in the settings file first); I(msg) has the problems, I(problems) lists them and
        I(channels) says, per channel, what serves it, the host setting it reads and where its call goes.
    type: str
    required: true
    choices: [clone, new, retarget, register, apply-plan, swap, undo, check, verify]
  esb_root:
    description: The ESB root on the host (C(--esb-root)); default esbgen's own (C($ESBGEN_ESB_ROOT), else the working directory).
    type: path
  executable:
    description: The esbgen command on the host (default C($ESBGEN_EXECUTABLE), else C(esbgen) on C(PATH)).
    type: path
  source:
    description: C(clone) the system SOURCE.
    type: str
  name:
    description:
      - C(new) and C(register) NAME; C(retarget) and C(verify) SYSTEM; for C(swap), the target's NAME (C(paas), C(prod) ...).
    type: str
  as:
    description: C(clone) C(--as NEW).
    type: str
    aliases: [new_name]
  app_code:
    description: C(--app-code).
    type: str
  app_url:
    description: C(retarget) C(--app-url).
    type: str
  to_source:
    description: C(retarget) C(--to-source).
    type: bool
    default: false
  label:
    description: C(--label).
    type: str
  remark:
    description: C(--remark).
    type: str
  type:
    description: C(--type), the SaaS type.
    type: str
  force:
    description: C(--force).
    type: bool
    default: false
  database:
    description: C(--database URL); never logged.
    type: str
  sync:
    description: C(--sync), run the ESB's C(sync_data_at_deploy) after the change.
    type: bool
    default: false
  restart:
    description: C(--restart), restart the ESB's supervisor program after the change.
    type: bool
    default: false
  esb_python:
    description: C(--esb-python).
    type: path
  supervisor_conf:
    description: C(--supervisor-conf).
    type: path
  program:
    description: C(--program) (esbgen's default is C(esb)).
    type: str
  supervisorctl:
    description: C(--supervisorctl).
    type: path
  plan:
    description: C(apply-plan) FILE, a plan written by O(plan_out) (or C(esbgen ... --plan-out)).
    type: path
  plan_out:
    description:
      - C(clone), C(new), C(retarget) C(--plan-out FILE), write the plan and change nothing.
      - On the controller the file is private (0600); an existing folder gets the plan named by its id,
        C(<sha256>.plan.json).
      - The task reports I(changed=false) (the host is not changed) and I(would_change).
    type: path
  plan_pointer:
    description:
      - With O(plan_out) (not in check mode), a file on the controller that gets the plan's id (0600), written
        by the action plugin once the plan is there; the fleet playbooks keep a fleet's plan so.
    type: path
  remote_plan:
    description: O(plan) and O(plan_out) are paths on the host, not on the controller.
    type: bool
    default: false
  id:
    description:
      - C(undo) C(--id ID), the change to undo (the I(journal_id) a task returned). A change already
        undone is reported as not changed, so the task can be repeated. Without it, the last change is undone.
    type: str
  systems:
    description: C(check) these systems (default all).
    type: list
    elements: str
    default: []
  kind:
    description: C(swap) KIND, C(web) or C(paasagent).
    type: str
  to:
    description: C(swap) C(--to HOST:PORT), one or more.
    type: list
    elements: str
    default: []
  extra_args:
    description: Further arguments given to the esbgen command as they are (e.g. C(swap)'s nginx options).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Runs the command with C(--dry-run); I(changed) says whether it would change the host.
  diff_mode:
    support: full
    description: The plan's file diffs, and each added folder with its files.
notes:
  - A refused change is rolled back by esbgen itself; a change that was applied and whose I(sync) or
    I(restart) failed afterwards is kept, reported with I(journal_id) and I(changed=true), and fails the task.
"""

EXAMPLES = r"""
- name: Plan the clone once, on the first host (the plan lands on the controller, private, named by its id)
  esbgen.esb.esbgen:
    command: clone
    source: sops
    as: bk_sops_ce
    esb_root: /data/bkce/open_paas/esb
    plan_out: ~/.esbgen/plans/
  register: planned
  run_once: true

- name: Apply that exact plan on each host
  esbgen.esb.esbgen:
    command: apply-plan
    plan: "{{ planned.plan_out }}"
    esb_root: /data/bkce/open_paas/esb
  register: esbgen_change

- name: Undo it again
  esbgen.esb.esbgen:
    command: undo
    id: "{{ esbgen_change.journal_id }}"
    esb_root: /data/bkce/open_paas/esb

- name: Verify the clone on each host (fails while BK_SOPS_CE_URL is not defined in its settings file)
  esbgen.esb.esbgen:
    command: verify
    name: bk_sops_ce
    esb_root: /data/bkce/open_paas/esb

- name: Point sops at another app, and restart the ESB
  esbgen.esb.esbgen:
    command: retarget
    name: sops
    app_code: bk-sops-ce
    restart: true
    supervisor_conf: /data/bkce/etc/supervisor-paas.conf
"""

RETURN = r"""
journal_id:
  description: The esbgen change this run applied (for O(id) of C(undo)); null when nothing was applied.
  returned: always
  type: str
would_change:
  description: In check mode, and for O(plan_out), whether the change would change the host.
  returned: always
  type: bool
plan:
  description: The plan, as esbgen reports it (title, root, adds with their files, writes with their diffs, notes).
  returned: when the command makes a plan
  type: dict
notes:
  description: The plan's notes (settings to define, what is left to the sync ...).
  returned: always
  type: list
  elements: str
steps_run:
  description: The post-steps that ran (sync, restart).
  returned: always
  type: list
  elements: str
messages:
  description: esbgen's output, line by line, as the command line prints it.
  returned: always
  type: list
  elements: str
error_class:
  description:
    - The class of esbgen's error when it failed (C(Refused), C(UsageError), C(PluginError), C(RolledBack),
      C(RollbackIncomplete), C(StepFailed), C(Interrupted), or their base C(EsbgenError)).
  returned: failure
  type: str
tree_state:
  description:
    - What the run left the ESB in, as esbgen reports it - C(unchanged) (nothing was changed, or a refusal),
      C(applied) (the change is applied and kept, even when a step after it failed), C(rolled back)
      (a change failed and was put back), C(rollback incomplete) (it could not all be put back; the next
      esbgen run or an undo finishes the job).
  returned: when esbgen gave its JSON outcome
  type: str
undone:
  description: For C(undo), the change undone (or that would be, in check mode).
  returned: when an undo ran
  type: str
plan_out:
  description: Where the plan was written (on the controller, private; in a folder, named by its id).
  returned: with O(plan_out)
  type: str
plan_id:
  description:
    - The plan's id, the sha256 of the plan file; for C(apply-plan), the change of each host records it.
  returned: with O(plan_out), and for C(apply-plan)
  type: str
plan_change:
  description:
    - For C(apply-plan), the change of this host that applied the plan earlier and is not undone (its journal id),
      else null; in check mode too, so a rerun finds where the plan is already applied.
  returned: for C(apply-plan)
  type: str
plan_steps_done:
  description: For C(apply-plan), the steps that ran after that change for this plan (C(sync), C(restart)).
  returned: for C(apply-plan)
  type: list
  elements: str
program_state:
  description:
    - For C(apply-plan) with O(restart) in check mode, the supervisor program's state (C(RUNNING), C(FATAL) ...);
      the task fails when supervisord is not running or knows no such program.
  returned: for C(apply-plan) with O(restart), in check mode
  type: str
esbgen_version:
  description: The version of the esbgen that ran on the host.
  returned: when esbgen gave its JSON outcome
  type: str
problems:
  description: For C(verify), its problem lines (empty when it passes).
  returned: when a verify ran
  type: list
  elements: str
channels:
  description:
    - For C(verify), one object per channel served (method, path, codename, module, class, host_setting,
      defined, destination).
  returned: when a verify ran
  type: list
  elements: dict
cmd:
  description: The esbgen command line that ran (a database URL masked).
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

CHANGES = ("clone", "new", "retarget", "register", "apply-plan", "swap", "undo")
READ_ONLY = ("check", "verify")
PLANNING = ("clone", "new", "retarget")


def find_executable(module):
    explicit = module.params["executable"] or os.environ.get("ESBGEN_EXECUTABLE")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            how = "executable" if module.params["executable"] else "$ESBGEN_EXECUTABLE"
            module.fail_json(msg="%s %s is not an executable file" % (how, explicit), error_class="UsageError")
        return explicit
    found = module.get_bin_path("esbgen")
    if not found:
        module.fail_json(msg="no esbgen found on the host: install it, or give executable or $ESBGEN_EXECUTABLE",
                         error_class="UsageError")
    return found


def option(argv, flag, value):
    if value is None or value is False:
        return
    if value is True:
        argv.append(flag)
    else:
        argv.extend([flag, str(value)])


def required(module, *names):
    missing = [name for name in names if not module.params[name]]
    if missing:
        module.fail_json(msg="command %s needs %s" % (module.params["command"], ", ".join(missing)),
                         error_class="UsageError")


def build_argv(module, executable):
    p = module.params
    command = p["command"]
    argv = [executable, command]
    if command == "clone":
        required(module, "source", "as")
        argv += [p["source"], "--as", p["as"]]
    elif command in ("new", "register", "retarget", "verify"):
        required(module, "name")
        argv.append(p["name"])
    elif command == "apply-plan":
        required(module, "plan")
        argv.append(p["plan"])
    elif command == "swap":
        required(module, "kind")
        argv.append(p["kind"])
        if p["name"]:
            argv.append(p["name"])
        for backend in p["to"]:
            argv += ["--to", backend]
    elif command == "check":
        argv += list(p["systems"])
    if command not in READ_ONLY:
        for flag, key in (("--app-code", "app_code"), ("--app-url", "app_url"), ("--to-source", "to_source"),
                          ("--label", "label"), ("--remark", "remark"), ("--type", "type"), ("--force", "force"),
                          ("--database", "database"), ("--sync", "sync"), ("--restart", "restart"),
                          ("--esb-python", "esb_python"), ("--supervisor-conf", "supervisor_conf"),
                          ("--program", "program"), ("--supervisorctl", "supervisorctl"), ("--id", "id"),
                          ("--plan-out", "plan_out")):
            option(argv, flag, p[key])
    if command != "swap":  # nginx's files are not in the ESB root
        option(argv, "--esb-root", p["esb_root"])
    argv += list(p["extra_args"])
    if module.check_mode and command in CHANGES and not p["plan_out"]:
        argv.append("--dry-run")
    argv.append("--json")
    return argv


def shown(argv, database):
    return ["***" if database and arg == database else arg for arg in argv]


def run_json(module, argv):
    """Run esbgen; its JSON object, with the raw outcome for messages."""
    rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C.UTF-8"})
    for line in reversed(out.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "esbgen" in data:
            return data, rc, out, err
    last = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
    if "no such option: --json" in err.lower():
        msg = "%s does not know --json: install an esbgen that does on the host" % argv[0]
    else:
        msg = "esbgen gave no JSON outcome (exit %d): %s" % (rc, last)
    module.fail_json(msg=msg, error_class="UsageError" if rc == 2 else "EsbgenError", rc=rc, stdout=out, stderr=err,
                     cmd=shown(argv, module.params["database"]), changed=False)


def ansible_diffs(plan):
    diffs = []
    for add in plan.get("adds", []):
        diffs.append({
            "before_header": "%s/%s" % (add["path"], " (replaced)" if add["replaces"] else " (absent)"),
            "after_header": "%s/ (%d files)" % (add["path"], len(add["files"])),
            "before": "",
            "after": "".join("%s/%s\n" % (add["path"], name) for name in add["files"]),
        })
    for write in plan.get("writes", []):
        diffs.append({"before_header": write["path"], "after_header": write["path"],
                      "before": write["before"], "after": write["after"]})
    return diffs


def lean(plan):
    """The plan as returned to Ansible: each write's diff, not its whole text twice."""
    if not plan:
        return plan
    plan = dict(plan)
    plan["writes"] = [{k: v for k, v in w.items() if k not in ("before", "after")} for w in plan.get("writes", [])]
    return plan


def already_undone(module, executable):
    """undo --id ID of a change already undone: nothing to do (the task can be repeated)."""
    argv = [executable, "undo", "--list", "--json"]
    option(argv, "--esb-root", module.params["esb_root"])
    data, rc, out, err = run_json(module, argv)
    if data.get("error"):
        return None
    wanted = module.params["id"]
    matches = [c for c in data.get("history", []) if c["id"] == wanted or c["id"].startswith(wanted)]
    if len(matches) == 1 and matches[0]["state"] in ("undone", "rolled-back"):
        return matches[0]
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", required=True, choices=list(CHANGES) + list(READ_ONLY)),
            esb_root=dict(type="path"),
            executable=dict(type="path"),
            source=dict(type="str"),
            name=dict(type="str"),
            app_code=dict(type="str"),
            app_url=dict(type="str"),
            to_source=dict(type="bool", default=False),
            label=dict(type="str"),
            remark=dict(type="str"),
            type=dict(type="str"),
            force=dict(type="bool", default=False),
            database=dict(type="str", no_log=True),
            sync=dict(type="bool", default=False),
            restart=dict(type="bool", default=False),
            esb_python=dict(type="path"),
            supervisor_conf=dict(type="path"),
            program=dict(type="str"),
            supervisorctl=dict(type="path"),
            plan=dict(type="path"),
            plan_out=dict(type="path"),
            plan_pointer=dict(type="path"),
            remote_plan=dict(type="bool", default=False),
            id=dict(type="str"),
            systems=dict(type="list", elements="str", default=[]),
            kind=dict(type="str"),
            to=dict(type="list", elements="str", default=[]),
            extra_args=dict(type="list", elements="str", default=[]),
            **{"as": dict(type="str", aliases=["new_name"])}
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["plan_out"] and p["command"] not in PLANNING:
        module.fail_json(msg="plan_out goes with clone, new or retarget", error_class="UsageError")
    executable = find_executable(module)
    if p["command"] == "undo" and p["id"]:
        done = already_undone(module, executable)
        if done is not None:
            module.exit_json(changed=False, would_change=False, journal_id=None, undone=None, notes=[], steps_run=[],
                             tree_state="unchanged", messages=["change %s is already %s" % (done["id"], done["state"])], cmd=[])
    argv = build_argv(module, executable)
    data, rc, out, err = run_json(module, argv)
    plan = data.get("plan") or {}
    result = dict(
        changed=bool(data.get("changed")),
        would_change=bool(data.get("would_change")),
        journal_id=data.get("journal_id"),
        plan=lean(data.get("plan")),
        notes=data.get("notes", []),
        steps_run=data.get("steps_run", []),
        messages=data.get("messages", []),
        cmd=shown(argv, p["database"]),
        rc=rc,
    )
    result["esbgen_version"] = data.get("esbgen")
    for key in ("undone", "plan_out", "history", "problems", "channels", "tree_state", "plan_id", "plan_change",
                "plan_steps_done", "program_state"):
        if key in data:
            result[key] = data[key]
    if p["plan_out"] or p["command"] in READ_ONLY:
        result["changed"] = False  # a plan was written, or the tree only read; the ESB is as it was
    elif module.check_mode:
        result["changed"] = result["would_change"]
    if module._diff and plan:
        result["diff"] = ansible_diffs(plan)
    error = data.get("error")
    if error:
        module.fail_json(msg=error["message"], error_class=error["class"], stderr=err, **result)
    if rc != 0:
        lines = data.get("messages") or ["exit %d" % rc]
        msg = lines[-1]
        if data.get("problems"):  # verify: each problem, the undefined host settings first
            msg = "%s: %s" % (lines[-1].rstrip("."), "; ".join(data["problems"]))
        module.fail_json(msg=msg, error_class="EsbgenError", stderr=err, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
