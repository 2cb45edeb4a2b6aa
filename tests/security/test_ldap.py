"""LDAP / AD sign-in (issue #17 item 2) against a real OpenLDAP server: Debian's slapd, started per module on a
loopback port with a small directory (tests/security/ldap_fixtures.py: two departments, nested groups, a disabled
user). ldap3 talks to slapd over the wire; nothing of the protocol is mocked."""
from __future__ import annotations

import logging
import socket
import time

import pytest
from conftest import make_container
from ldap_fixtures import (ALICE, BOB, CAROL, DATA, GROUPS, OFFICE, PASSWORDS, PEOPLE, SEARCH_DN, SEARCH_PW, Slapd,
                           change, free_port, group_dn, ldap_env, slapd_available)

from assistant.components.identity.ldap import LdapAuthenticator, LdapUnavailable
from assistant.services.directory import ExternalIdentity
from assistant.settings import LdapSettings
from ui.auth import Login, LoginError

pytestmark = [pytest.mark.skipif(not slapd_available(), reason="Debian's slapd (/usr/sbin/slapd) and ldap-utils "
                                                               "are not installed"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("slapd"), tls=True).start()
    yield server
    server.stop()


def settings(url: str, **kw) -> LdapSettings:
    base = dict(enabled=True, url=url, bind_dn=SEARCH_DN, bind_password=SEARCH_PW, user_base=PEOPLE,
                group_base=GROUPS, disabled_filter="(employeeType=disabled)", timeout_s=3)
    return LdapSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def ldap(slapd) -> LdapAuthenticator:
    return LdapAuthenticator(settings(slapd.url))


@pytest.fixture
def ldap_container(slapd, tmp_path):
    return make_container(tmp_path / "data", **ldap_env(slapd.url))


# -- the bind --------------------------------------------------------------------------------------------------------

def test_a_good_password_gives_the_dn_the_name_the_department_and_nested_groups(ldap):
    bob = ldap.authenticate("bob", PASSWORDS["bob"])
    assert isinstance(bob, ExternalIdentity) and bob.enabled
    assert bob.source == "ldap" and bob.subject == BOB and bob.principal_id == f"ldap:{BOB}"
    assert bob.name == "李博" and bob.departments == (DATA,)
    assert group_dn("data-team") in bob.groups                    # direct
    assert group_dn("editors") in bob.groups                      # via data-team
    assert group_dn("all-staff") in bob.groups                    # via editors via data-team
    assert {group_dn("loop-a"), group_dn("loop-b")} <= set(bob.groups)   # a cycle ends
    assert group_dn("admins") not in bob.groups
    assert len(bob.groups) == len(set(bob.groups)) == 5
    alice = ldap.authenticate("alice", PASSWORDS["alice"])
    assert alice.subject == ALICE and alice.departments == (OFFICE,) and alice.name == "王丽"
    assert set(alice.groups) == {group_dn("admins"), group_dn("all-staff")}


def test_without_nested_groups_only_direct_memberships_count(slapd):
    bob = LdapAuthenticator(settings(slapd.url, nested_groups=False)).authenticate("bob", PASSWORDS["bob"])
    assert isinstance(bob, ExternalIdentity)
    assert set(bob.groups) == {group_dn("data-team"), group_dn("loop-a")}


def test_the_username_is_trimmed_and_matched_as_the_directory_matches_uid(ldap):
    assert ldap.authenticate("  BOB ", PASSWORDS["bob"]).subject == BOB   # uid is case-insensitive in the schema


@pytest.mark.parametrize("username, password", [
    ("bob", "wrong"),
    ("bob", PASSWORDS["alice"]),                 # another user's password
    ("bob", PASSWORDS["bob"] + " "),
    ("nobody", "whatever"),                      # unknown user
    ("twin", PASSWORDS["twin"]),                 # two entries match: never guess which
])
def test_wrong_credentials_unknown_and_ambiguous_users_give_none(ldap, username, password):
    assert ldap.authenticate(username, password) is None


@pytest.mark.parametrize("username", ["*", "*)(uid=*", "bob)(uid=*", "*)(|(uid=*", "b*", "bob\\", "(uid=bob)",
                                      "bob\x00", "x" * 300])
def test_filter_injection_in_the_username_finds_nobody(ldap, username):
    assert ldap.authenticate(username, PASSWORDS["bob"]) is None
    assert ldap.authenticate(username, "") is None


def test_an_empty_password_is_refused_before_any_traffic(slapd, ldap):
    assert ldap.authenticate("bob", "") is None
    assert ldap.authenticate("bob", None) is None
    # proof that nothing is sent: against an address where nothing listens it is still None, not "unavailable"
    dead = LdapAuthenticator(settings(f"ldap://127.0.0.1:{free_port()}"))
    assert dead.authenticate("bob", "") is None
    assert dead.authenticate("", "x") is None
    with pytest.raises(LdapUnavailable):
        dead.authenticate("bob", "x")


def test_a_disabled_account_with_its_right_password_comes_back_disabled_and_the_directory_refuses_it(
        ldap, ldap_container):
    carol = ldap.authenticate("carol", PASSWORDS["carol"])
    assert carol.subject == CAROL and carol.enabled is False
    with pytest.raises(PermissionError):
        ldap_container.directory.principal_for(carol)
    assert ldap.authenticate("carol", "wrong") is None            # the wrong password learns nothing more


def test_the_directory_down_is_a_clear_error_not_a_wrong_password(slapd):
    with pytest.raises(LdapUnavailable):
        LdapAuthenticator(settings(f"ldap://127.0.0.1:{free_port()}")).authenticate("bob", PASSWORDS["bob"])
    with pytest.raises(LdapUnavailable):                          # the search account refused: misconfigured
        LdapAuthenticator(settings(slapd.url, bind_password="not-it")).authenticate("bob", PASSWORDS["bob"])


def test_a_directory_that_accepts_but_never_answers_times_out(slapd):
    with socket.socket() as silent:                               # the kernel accepts; nobody ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(LdapUnavailable):
            LdapAuthenticator(settings(url, timeout_s=1)).authenticate("bob", PASSWORDS["bob"])
        assert time.monotonic() - start < 10


def test_start_tls_and_ldaps_verify_the_servers_certificate(slapd, caplog):
    ca = str(slapd.ca_file)
    for kw in (dict(url=slapd.url, start_tls=True, tls_ca_file=ca), dict(url=slapd.ldaps_url, tls_ca_file=ca)):
        assert LdapAuthenticator(settings(**kw)).authenticate("bob", PASSWORDS["bob"]).subject == BOB, kw
    for kw in (dict(url=slapd.url, start_tls=True), dict(url=slapd.ldaps_url)):   # the test CA is not trusted
        caplog.clear()
        with pytest.raises(LdapUnavailable):
            LdapAuthenticator(settings(**kw)).authenticate("bob", PASSWORDS["bob"])
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text, kw


def test_no_password_reaches_the_log(slapd, caplog):
    caplog.set_level(logging.DEBUG)
    for url in (slapd.url, f"ldap://127.0.0.1:{free_port()}"):
        for bind_password in (SEARCH_PW, "not-it"):
            auth = LdapAuthenticator(settings(url, bind_password=bind_password))
            for user, pw in (("bob", PASSWORDS["bob"]), ("bob", "Wrong-Pw-9"), ("carol", PASSWORDS["carol"])):
                try:
                    auth.authenticate(user, pw)
                except LdapUnavailable as exc:
                    assert pw not in str(exc) and SEARCH_PW not in str(exc)
    assert "signed in" in caplog.text and "unreachable" in caplog.text and "refused the search account" in caplog.text
    for secret in (*PASSWORDS.values(), SEARCH_PW, "not-it", "Wrong-Pw-9"):
        assert secret not in caplog.text


def test_server_type_auto_reads_the_root_dse_and_finds_no_active_directory(ldap):
    assert ldap.authenticate("alice", PASSWORDS["alice"]) is not None
    assert ldap._ad is False


def test_active_directory_groups_use_the_in_chain_matching_rule(slapd):
    """OpenLDAP does not know 1.2.840.113556.1.4.1941: the filter is sent (ldap3 encodes the extensible match)
    and slapd, for which both AD filters are undefined, matches nothing — where AD resolves the chain itself."""
    ad = LdapAuthenticator(settings(slapd.url, server_type="ad", disabled_filter=None))
    sent = []
    search = ad._search
    ad._search = lambda conn, base, flt, *a: sent.append(flt) or search(conn, base, flt, *a)
    bob = ad.authenticate("bob", PASSWORDS["bob"])
    assert f"(member:1.2.840.113556.1.4.1941:={BOB})" in sent
    assert "(userAccountControl:1.2.840.113556.1.4.803:=2)" in sent   # AD's disabled bit, checked by default
    assert bob.subject == BOB and bob.enabled and bob.groups == ()    # undefined filters match nothing


# -- the UI login over LDAP ------------------------------------------------------------------------------------------

def test_ui_login_over_ldap_maps_groups_and_departments_and_rechecks_the_directory(ldap_container):
    c = ldap_container
    assert isinstance(c.ldap, LdapAuthenticator)
    rule = c.directory.add_rule("group", group_dn("editors"), role="editor", by="t")
    c.directory.grant("数据目录", "department", DATA, "read", by="t")
    login = Login(c, c.ldap.authenticate)
    bob = login.with_password("bob", PASSWORDS["bob"], "10.0.0.1")
    assert bob.id == f"ldap:{BOB}" and bob.source == "ldap" and bob.name == "李博"
    assert bob.role == "editor"                                   # via editors ← data-team ← bob
    assert "数据目录" in bob.kbs and DATA in bob.departments
    assert login.still_valid(bob)
    alice = login.with_password("alice", PASSWORDS["alice"], "10.0.0.2")
    assert alice.role == "reader" and "数据目录" not in alice.kbs
    c.directory.remove_rule(rule["id"])                          # the open session is re-read from the directory
    assert not login.still_valid(bob)
    assert login.still_valid(alice)                               # nothing of hers changed


def test_rules_and_grants_match_group_dns_written_with_other_case_and_spacing(ldap_container):
    c = ldap_container
    c.directory.add_rule("group", "CN=Editors , OU=Groups,DC=Example, DC=GOV", role="editor", by="t")
    c.directory.add_rule("user", f"ldap:{BOB.upper()}", clearance="敏感", by="t")
    c.directory.grant("数据目录", "group", "cn=ALL-STAFF, ou=groups , dc=example,dc=gov", by="t")
    bob = Login(c, c.ldap.authenticate).with_password("bob", PASSWORDS["bob"], "10.0.0.6")
    assert group_dn("editors") in bob.groups                      # as slapd writes it
    assert bob.role == "editor" and "敏感" in bob.levels and "数据目录" in bob.kbs


def test_ui_login_refuses_wrong_passwords_injection_and_disabled_accounts(ldap_container):
    c = ldap_container
    login = Login(c, c.ldap.authenticate)
    for user, pw in (("bob", "wrong"), ("*)(uid=*", "x"), ("nobody", "x")):
        with pytest.raises(LoginError, match="用户名或密码错误"):
            login.with_password(user, pw, "10.0.0.3")
    with pytest.raises(LoginError, match="请输入用户名和密码"):
        login.with_password("bob", "", "10.0.0.3")
    with pytest.raises(LoginError, match="已停用"):
        login.with_password("carol", PASSWORDS["carol"], "10.0.0.4")


def test_ui_login_with_the_directory_down_says_so_and_is_not_counted_as_guessing(tmp_path):
    c = make_container(tmp_path / "data", **ldap_env(f"ldap://127.0.0.1:{free_port()}"))
    login = Login(c, c.ldap.authenticate)
    for _ in range(8):                                            # more than the per-address limit of failures
        with pytest.raises(LoginError, match="目录服务不可用"):
            login.with_password("bob", PASSWORDS["bob"], "10.0.0.5")


def test_the_app_passes_the_ldap_login_to_the_ui_only_when_enabled(ldap_container, tmp_path, monkeypatch):
    import ui.app
    from assistant.api.app import create_app
    seen = []
    monkeypatch.setattr(ui.app, "mount_ui", lambda app, container, **kw: seen.append(kw.get("principal_resolver")))
    create_app(ldap_container)
    create_app(make_container(tmp_path / "plain"))
    assert seen[0] is not None and seen[0].__self__ is ldap_container.ldap and seen[1] is None
    assert make_container(tmp_path / "plain").ldap is None


def test_enabled_ldap_settings_must_name_the_server_and_the_user_base():
    with pytest.raises(ValueError, match="url"):
        LdapSettings(enabled=True, user_base=PEOPLE)
    with pytest.raises(ValueError, match="username"):
        LdapSettings(enabled=True, url="ldap://127.0.0.1", user_base=PEOPLE, user_filter="(uid=bob)")
    assert LdapSettings().enabled is False                        # the embedded default: no LDAP
    assert LdapSettings().recheck_s == 300
    with pytest.raises(ValueError, match="recheck_s"):
        LdapSettings(recheck_s=-1)


# -- an open UI session re-checked against the directory -----------------------------------------------------

def _action(c, login):
    """A UI action as every page registers one (ui/session.py session_handler: checked, then audited)."""
    from ui.session import session_handler

    def refresh(principal):
        return "ran"
    return session_handler(refresh, c, login.check)


def _ended(c) -> list[tuple]:
    return [(e["principal"], e["outcome"], e["detail"]) for e in c.audit.tail(100)
            if e["operation"] == "ui.session.end"]


def _no_secret_in_the_audit_log(c) -> None:
    import json
    dump = json.dumps(c.audit.tail(400), ensure_ascii=False)
    for secret in (*PASSWORDS.values(), SEARCH_PW):
        assert secret not in dump


def test_an_account_disabled_in_ldap_ends_its_session_at_the_first_action_after_recheck_s(slapd, tmp_path):
    import gradio as gr
    from identity_fixtures import Clock
    c = make_container(tmp_path / "data", **ldap_env(slapd.url, recheck_s="60"))
    clock = Clock()
    login = Login(c, c.ldap.authenticate, clock=clock)
    act = _action(c, login)
    bob = login.with_password("bob", PASSWORDS["bob"], "10.0.0.7")
    alice = login.with_password("alice", PASSWORDS["alice"], "10.0.0.7")
    assert act(bob) == "ran"
    slapd.modify(change(BOB, "changetype: modify", "add: employeeType", "employeeType: disabled"))
    try:
        clock.advance(59)
        assert act(bob) == "ran"                                  # within recheck_s: the directory not asked
        clock.advance(2)
        with pytest.raises(gr.Error, match="已在目录中停用或删除"):    # the first action after it: read again
            act(bob)
        assert not login.still_valid(bob)                         # and it stays ended
        assert act(alice) == "ran"                                # re-read too: nothing of hers changed
        with pytest.raises(LoginError, match="已停用"):
            login.with_password("bob", PASSWORDS["bob"], "10.0.0.7")
    finally:
        slapd.modify(change(BOB, "changetype: modify", "delete: employeeType"))
    assert _ended(c) == [(f"ldap:{BOB}", "ended", {"reason": "ldap_disabled"})]
    _no_secret_in_the_audit_log(c)


def test_groups_that_now_map_to_less_end_the_session_and_more_groups_do_not(slapd, tmp_path):
    import gradio as gr
    c = make_container(tmp_path / "data", **ldap_env(slapd.url, recheck_s="0"))     # 0: at every action
    c.directory.add_rule("group", group_dn("editors"), role="editor", by="t")
    login = Login(c, c.ldap.authenticate)
    act = _action(c, login)
    bob = login.with_password("bob", PASSWORDS["bob"], "10.0.0.8")
    assert bob.role == "editor"
    def members(group: str, *dns: str) -> None:
        slapd.modify(change(group_dn(group), "changetype: modify", "replace: member",
                            *(("member", d) for d in dns)))
    try:
        members("admins", ALICE, BOB)                             # a group no rule maps: no less access
        assert act(bob) == "ran" and act(bob) == "ran"
        members("data-team", SEARCH_DN)                           # editors came through data-team
        with pytest.raises(gr.Error, match="登录已失效"):
            act(bob)
    finally:
        members("admins", ALICE)
        members("data-team", BOB)
    assert _ended(c) == [(f"ldap:{BOB}", "ended", {"reason": "ldap_less_access"})]
    again = login.with_password("bob", PASSWORDS["bob"], "10.0.0.8")
    assert again.role == "editor" and act(again) == "ran"         # the directory as it was: editor again


def test_a_deleted_account_and_a_directory_down_at_the_recheck_end_the_session(tmp_path):
    """Fail closed: a directory that cannot be asked ends the session (目录服务不可用) rather than let an account
    that may have been disabled in it act on."""
    import gradio as gr
    server = Slapd(tmp_path / "slapd").start()                    # its own: this test deletes and stops it
    try:
        c = make_container(tmp_path / "data", **ldap_env(server.url, recheck_s="0"))
        login = Login(c, c.ldap.authenticate)
        act = _action(c, login)
        alice = login.with_password("alice", PASSWORDS["alice"], "10.0.0.9")
        bob = login.with_password("bob", PASSWORDS["bob"], "10.0.0.9")
        server.modify(change(ALICE, "changetype: delete"))
        with pytest.raises(gr.Error, match="已在目录中停用或删除"):
            act(alice)
        assert act(bob) == "ran"
        server.stop()
        with pytest.raises(gr.Error, match="目录服务不可用"):
            act(bob)
        assert not login.still_valid(bob)
    finally:
        server.stop()
    assert _ended(c) == [(f"ldap:{ALICE}", "ended", {"reason": "ldap_gone"}),
                         (f"ldap:{BOB}", "ended", {"reason": "ldap_unavailable"})]
    _no_secret_in_the_audit_log(c)


# -- in the browser --------------------------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_password_tab_signs_in_over_ldap_in_chromium(ldap_container):
    """create_app (what `gov-assistant serve` runs) with identity.ldap on: the 用户名密码登录 tab refuses a wrong
    password and signs bob in as the directory maps him."""
    import os
    import threading
    from pathlib import Path

    import uvicorn

    from assistant.api.app import create_app
    chromium = os.environ.get("GOV_ASSISTANT_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        pytest.fail(f"{chromium} not found: `make install-test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    c = ldap_container
    c.directory.add_rule("group", group_dn("editors"), role="editor", by="t")
    c.directory.grant("数据目录", "department", DATA, "read", by="t")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(c), host="127.0.0.1", port=sock.getsockname()[1],
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_context(locale="zh-CN").new_page()
                page.set_default_timeout(30_000)
                page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/ui/")
                page.get_by_role("tab", name="用户名密码登录").click()
                page.fill("#login-user textarea, #login-user input", "bob")
                page.fill("#login-password input", "wrong")
                page.click("#login-password-btn")
                page.get_by_text("用户名或密码错误").first.wait_for()
                assert page.locator("#main-box").is_hidden()
                page.fill("#login-password input", PASSWORDS["bob"])
                page.click("#login-password-btn")
                page.wait_for_selector("#main-box", state="visible")
                info = page.inner_text("#user-info")
                assert "李博" in info and "编辑" in info and "数据目录" in info, info
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
    logins = [e for e in c.audit.tail(20) if e["operation"] == "ui.login"]
    assert [e["outcome"] for e in logins][-2:] == ["denied", "ok"] and logins[-1]["principal"] == f"ldap:{BOB}"


def test_a_cleartext_url_to_another_host_is_warned_about(caplog):
    LdapAuthenticator(settings("ldap://dc.example.gov.cn:389"))
    assert "unencrypted" in caplog.text
    caplog.clear()
    for kw in (dict(url="ldap://dc.example.gov.cn:389", start_tls=True), dict(url="ldaps://dc.example.gov.cn"),
               dict(url="ldap://127.0.0.1:389"), dict(url="ldap://[::1]")):
        LdapAuthenticator(settings(**kw))
    assert "unencrypted" not in caplog.text
