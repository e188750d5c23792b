"""``esbgen.esb.routing``: where a call goes, read from the component's code and the settings file."""

from __future__ import annotations

from pathlib import Path

from routing_kit import LATER, LEGACY, call, copy_fixture


def test_legacy_component_calls_the_platform_host_with_the_whole_path(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, LEGACY)

    where = call(root, "sops", "get_template_list", bk_biz_id="2")

    assert where.host_setting == "PAAS_HOST"
    assert where.routing.whole_path and where.routing.strips == ()
    assert where.host == "http://paas.legacy.example:80"  # a literal of configs/default.py
    assert str(where.settings_file) == "configs/default.py"
    assert (where.method, where.path) == ("GET", "/o/bk_sops/apigw/get_template_list/2/")
    assert where.describe() == "GET http://paas.legacy.example:80/o/bk_sops/apigw/get_template_list/2/ (PAAS_HOST)"
    create = call(root, "sops", "create_task", bk_biz_id="2", template_id="7")
    assert (create.method, create.path) == ("POST", "/o/bk_sops/apigw/create_task/7/2/")


def test_later_component_strips_the_app_and_calls_its_own_host(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, LATER)

    where = call(root, "sops", "get_template_list", bk_biz_id="2")

    assert where.host_setting == "BK_SOPS_URL"
    assert where.routing.strips == (("^/o/bk_sops", ""),) and where.routing.strips_app("bk_sops")
    assert not where.routing.strips_app("bk-sops-ce")
    assert str(where.settings_file) == "conf/default.py"
    # The value is read from the environment: the file has the code, not an address.
    assert where.host is None and where.setting.code == 'env.str("BK_SOPS_URL", "")'
    assert (where.method, where.path) == ("GET", "/apigw/get_template_list/2/")
    assert where.describe() == 'GET $BK_SOPS_URL/apigw/get_template_list/2/ (BK_SOPS_URL = env.str("BK_SOPS_URL", "") in conf/default.py)'


def test_path_through_a_local_variable_and_an_undefined_setting(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, "esb")  # the sample ESB: path = self._get_cleaned_path(...), then path=path
    where = call(root, "sops", "get_template_list", bk_biz_id="2")
    assert (where.host_setting, where.host, where.path) == (
        "BK_SOPS_URL", "http://paas.service.consul:80", "/apigw/get_template_list/2/"
    )

    configs = root / "configs/default.py"
    configs.write_bytes(configs.read_bytes().replace(b"BK_SOPS_URL = ", b"OLD_SOPS_URL = "))
    where = call(root, "sops", "get_template_list")
    assert where.setting is None and where.path == "/apigw/get_template_list/{bk_biz_id}/"
    assert where.describe() == "GET $BK_SOPS_URL/apigw/get_template_list/{bk_biz_id}/ (BK_SOPS_URL is not defined in configs/default.py)"


def test_a_host_esbgen_cannot_read_is_said_not_guessed(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path, LEGACY)
    component = root / "components/bk/apisv2/sops/sops_component.py"
    data = component.read_bytes()
    assert data.count(b"host=configs.host,") == 1
    component.write_bytes(data.replace(b"host=configs.host,", b"host=self.pick_host(),"))

    where = call(root, "sops", "get_template_list", bk_biz_id="2")

    assert where.host_setting is None and where.setting is None
    assert where.describe() == "GET <a host not readable from the component>/o/bk_sops/apigw/get_template_list/2/"
