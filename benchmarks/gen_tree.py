"""A sample ESB root with one big confapis system, for the benchmark and for profiling.

``make_root(dest, channels)`` copies fixtures/esb to ``dest`` and replaces the
confapis side of ``sops`` with ``channels`` generated entries (a few comment
lines, both quoting styles, Chinese labels, optional fields) and two apidocs
per channel (en and zh_hans, 2-3 KB each, with the ESB's own ``{{ ... }}``
placeholders the way real docs carry them).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "esb"
SOURCE = "sops"
VERBS = ("get", "list", "create", "update", "delete", "start", "query", "operate", "import", "set")
NOUNS = ("template", "task", "flow", "node", "plan", "periodic_task", "job", "pipeline", "variable", "project")
METHODS = ("GET", "POST", "GET", "POST", "POST", "POST", "GET", "POST", "POST", "POST")
CHANNEL_KEYS = ("path", "comp_codename", "dest_path")


def channel_name(index: int) -> str:
    return f"{VERBS[index % len(VERBS)]}_{NOUNS[(index // len(VERBS)) % len(NOUNS)]}_{index:05d}"


def yaml_entry(index: int) -> str:
    name = channel_name(index)
    method = METHODS[index % len(METHODS)]
    style = index % 3
    path = f"/v2/{SOURCE}/{name}/"
    codename = f"generic.v2.{SOURCE}.sops_component"
    dest = f"/o/bk_sops/apigw/{name}/{{bk_biz_id}}/"
    if style == 1:
        path, codename = f'"{path}"', f'"{codename}"'
    elif style == 2:
        dest = f"'{dest}'"
    lines = []
    if index % 10 == 0:
        lines.append(f"# ---- 第 {index // 10 + 1} 组接口 / group {index // 10 + 1} ----")
    lines += [
        f"- path: {path}",
        f"  name: {name}",
        f"  label: 接口 {index} ({NOUNS[index % len(NOUNS)]})",
        f"  label_en: 'Operation {index} on {NOUNS[index % len(NOUNS)]}s'" + ("   " if index % 7 == 0 else ""),
        f"  method: {method}" + ("  # 写操作" if method == "POST" and index % 4 == 0 else ""),
        f"  suggest_method: {method}",
        f"  api_type: {'query' if method == 'GET' else 'operate'}",
        f"  comp_codename: {codename}",
        f"  dest_path: {dest}",
        f"  dest_http_method: {method}",
    ]
    if index % 5 == 0:
        lines.append("  extra_param_fields: [creator, operator]")
    if index % 11 == 0:
        lines.append("  is_hidden: false")
    return "\n".join(lines) + "\n\n"


def yaml_file(channels: int) -> str:
    head = (
        "# 标准运维 (bk_sops) 组件配置, generated for the esbgen benchmark\n"
        f"# {channels} channels served by generic.v2.{SOURCE}.sops_component\n"
        "---\n\n"
    )
    return head + "".join(yaml_entry(i) for i in range(channels))


def doc(index: int, language: str) -> str:
    name = channel_name(index)
    noun = NOUNS[index % len(NOUNS)]
    if language == "en":
        intro = f"Operate on the {noun} given by its id (channel {name}). The result comes back as JSON."
        fields = [("bk_biz_id", "int", "YES", "business ID"), (f"{noun}_id", "int", "YES", f"{noun} ID"),
                  ("name", "string", "NO", "display name"), ("constants", "dict", "NO", "global variables, keyed `${key}`")]
        titles = ("Functional description", "Request Parameters", "Interface Parameters",
                  "Request Parameters Example", "Return Result Example", "Return Result Description")
    else:
        intro = f"按 ID 操作{noun}（接口 {name}），结果以 JSON 返回。全局变量以 `${{key}}` 为键传入。"
        fields = [("bk_biz_id", "int", "是", "业务 ID"), (f"{noun}_id", "int", "是", f"{noun} ID"),
                  ("name", "string", "否", "名称"), ("constants", "dict", "否", "全局变量")]
        titles = ("功能描述", "请求参数", "接口参数", "请求参数示例", "返回结果示例", "返回结果说明")
    table = "\n".join(f"| {f} | {t} | {r} | {d} |" for f, t, r, d in fields)
    conditional = '{% if flow_type == "common_func" %}A functional flow waits for an operator.{% endif %}\n\n' if index % 9 == 0 else ""
    return (
        f"### {titles[0]}\n\n{intro}\n\n{conditional}"
        f"### {titles[1]}\n\n{{{{ common_args_desc }}}}\n\n"
        f"#### {titles[2]}\n\n| Field | Type | Required | Description |\n|-----------|------------|--------|------------|\n{table}\n\n"
        f"### {titles[3]}\n\n```json\n{{\n    \"bk_app_code\": \"esb_test\",\n    \"bk_app_secret\": \"xxx\",\n"
        f"    \"bk_username\": \"admin\",\n    \"bk_biz_id\": 2,\n    \"{noun}_id\": {index},\n"
        f"    \"constants\": {{\"${{content}}\": \"echo {index}\", \"${{timeout}}\": 20}}\n}}\n```\n\n"
        f"### {titles[4]}\n\n```json\n{{\n    \"result\": true,\n    \"code\": 0,\n    \"message\": \"\",\n"
        f"    \"data\": {{\n        \"id\": {index},\n        \"url\": \"http://paas.service.consul/o/bk_sops/taskflow/{index}/\"\n    }}\n}}\n```\n\n"
        f"### {titles[5]}\n\n| Field | Type | Description |\n|-----------|----------|-----------|\n"
        f"| result | bool | true on success |\n| code | int | 0 on success |\n| message | string | error text |\n"
        f"| data | dict | the {noun} |\n\n"
        f"#### data\n\n| Field | Type | Description |\n|-----------|----------|-----------|\n"
        f"| id | int | {noun} ID |\n| name | string | {noun} name |\n| creator | string | who created it |\n"
        f"| create_time | string | when, `YYYY-mm-dd HH:MM:SS` |\n| url | string | its page in the app |\n"
    )


def make_root(dest: Path, channels: int) -> Path:
    """An ESB root at ``dest`` whose ``sops`` system has ``channels`` channels."""
    shutil.copytree(FIXTURE, dest, symlinks=True)
    confapis = dest / "components" / "confapis" / SOURCE
    shutil.rmtree(confapis)
    confapis.mkdir()
    (confapis / f"{SOURCE}.yaml").write_text(yaml_file(channels), encoding="utf-8")
    for language in ("en", "zh_hans"):
        folder = confapis / "apidocs" / language
        folder.mkdir(parents=True)
        for index in range(channels):
            (folder / f"{channel_name(index)}.md").write_text(doc(index, language), encoding="utf-8")
    return dest


REAL_CHANNELS = 19
REAL_SYSTEMS = 28


def make_real_root(dest: Path) -> Path:
    """A real-sized ESB root: ``sops`` with 19 channels among 28 systems (the fixture's 3 and 25 more).

    Each added system ``bench_NN`` is a renamed copy of ``sops`` (both sides, its own paths,
    codenames and host setting), so that reading the tree reads 28 systems of that size.
    """
    make_root(dest, REAL_CHANNELS)
    components = dest / "components"
    from esbgen.esb.tree import load_tree

    have = load_tree(dest).systems
    for number in range(REAL_SYSTEMS - len(have)):
        name = f"bench_{number:02d}"
        for group in (components / "bk" / "apisv2", components / "confapis"):
            for path in sorted((group / SOURCE).rglob("*")):
                relative = path.relative_to(group / SOURCE)
                target = group / name / str(relative).replace(f"{SOURCE}.yaml", f"{name}.yaml")
                if path.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if path.suffix in (".py", ".yaml"):
                    text = path.read_text(encoding="utf-8")
                    keep = f"{SOURCE}_component"  # the component (module and class) keeps its name
                    text = text.replace(keep, "\0").replace("bk_sops", f"bk_{name}").replace("SOPS", name.upper())
                    text = text.replace(SOURCE, name).replace("\0", keep)
                    target.write_text(text, encoding="utf-8")
                else:
                    shutil.copyfile(path, target)
    return dest


if __name__ == "__main__":
    if sys.argv[2] == "real":
        make_real_root(Path(sys.argv[1]))
    else:
        make_root(Path(sys.argv[1]), int(sys.argv[2]))
