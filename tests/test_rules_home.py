"""The rules that used to be written in several places, now each in rules.py once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from esbgen.esb.rules import (
    follows_path_pattern,
    host_setting_reason,
    is_host_setting,
    is_v2_path,
    path_below_system,
    standard_path,
    standard_path_parts,
)

NAMES = st.from_regex(r"[A-Z][A-Z0-9]{0,5}(_[A-Z0-9]{1,5}){0,3}", fullmatch=True)


@given(NAMES)
def test_every_host_setting_a_clone_renames_is_one_sync_edition_keeps(name):
    # the cautious test may take more, never less: a setting a clone gives its own is never
    # overwritten with the CE's value
    if is_host_setting(name):
        assert host_setting_reason(name, cautious=True)


def test_the_two_strengths_differ_where_they_should():
    for name in ("BK_SOPS_URL", "USERMGR_HOST", "HOST_CC_V3", "GSE_PROC_PORT", "BK_BSCP_API_ADDR"):
        assert is_host_setting(name) and host_setting_reason(name, cautious=True), name
    # not a component's backend, but a value sync-edition must not take from the CE
    for name, value in (("ALLOWED_HOSTS", "['*']"), ("ESB_IP", "'10.0.0.1'"), ("BK_LOGIN_DOMAIN", "''"),
                        ("LOGIN_PAGE", "'http://paas.service.consul/login/'")):
        assert not is_host_setting(name), name
        assert host_setting_reason(name, value, cautious=True), name
    assert host_setting_reason("DEBUG", "False", cautious=True) is None


def test_standard_paths_in_both_forms():
    assert standard_path("sops", "get_template_list") == "/v2/sops/get_template_list/"
    assert standard_path("sops", "get_template_list", v2=False) == "/sops/get_template_list/"
    for v2 in (True, False):
        path = standard_path("bk_sops_ce", "x", v2=v2)
        assert follows_path_pattern("bk_sops_ce", "x", path)
        assert "".join(standard_path_parts("bk_sops_ce", "x", v2=v2)) == path
        assert is_v2_path(path) is v2
        assert path_below_system(path, "bk_sops_ce") == "/x/"
    assert "".join(standard_path_parts("s", "x", last_slash=False)) == "/v2/s/x"
    assert is_v2_path("v2/s/x/") and not is_v2_path("/v2x/s/x/")
