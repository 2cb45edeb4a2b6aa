"""The directory (issue #17 item 3): directory facts → role, departments, clearance; knowledge bases granted to
departments, groups, users and keys; the same checks on every route because the principal carries them; every
change audited with the acting id."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.services.access import LOCAL_ADMIN, AccessDenied
from assistant.services.auth import AuthError
from assistant.services.directory import DirectoryError, ExternalIdentity
from tests.api.conftest import make_container
from ui.auth import Login, LoginError

EDITORS = "cn=editors,ou=groups,dc=example,dc=gov"
ALICE = ExternalIdentity("ldap", "uid=alice,ou=people,dc=example,dc=gov", "张三", groups=(EDITORS,),
                         departments=("办公室",))
BOB = ExternalIdentity("oidc", "5f1c-bob", "李四", claims={"dept": "数据资源处", "groups": ["g1"]})


@pytest.fixture
def c(tmp_path):
    c = make_container(tmp_path / "data")
    for kb in ("office", "data", "shared"):
        c.knowledge_bases.create(kb, principal=LOCAL_ADMIN)
    return c


def test_no_rule_and_no_grant_is_a_reader_of_nothing(c):
    p = c.principals.from_identity(ALICE)
    assert (p.id, p.role, p.kbs, p.levels) == ("ldap:" + ALICE.subject, "reader", (), ("公开", "内部"))
    assert p.name == "张三" and p.source == "ldap" and p.departments == ("办公室",)
    assert c.knowledge_bases.list(principal=p) == []


def test_rules_add_up_and_grants_follow_departments_groups_and_users(c):
    d = c.directory
    d.add_rule("group", EDITORS, role="editor", by="t")
    d.add_rule("claim", "dept=数据资源处", department="数据资源处", by="t")
    d.add_rule("user", "oidc:5f1c-bob", clearance="敏感", by="t")
    d.add_rule("department", "办公室", clearance="公开", by="t")    # lower than the default: the highest wins
    d.grant("office", "department", "办公室", "write", by="t")
    d.grant("data", "department", "数据资源处", by="t")
    d.grant("shared", "group", EDITORS, by="t")
    alice, bob = c.principals.from_identity(ALICE), c.principals.from_identity(BOB)
    assert alice.role == "editor" and set(alice.kbs) == {"office", "shared"}
    assert alice.can_write("office") and not alice.can_write("shared")       # shared is granted read-only
    assert alice.levels == ("公开",)                                         # the rule's clearance, not the default
    assert bob.role == "reader" and bob.departments == ("数据资源处",) and bob.kbs == ("data",)
    assert bob.levels == ("公开", "内部", "敏感") and not bob.can_write("data")
    with pytest.raises(AccessDenied):
        c.search.search("通知", ["office"], principal=bob)


def test_dns_in_rules_and_grants_match_whatever_their_case_and_spacing(c):
    """Servers compare DNs case-insensitively, spaces around separators aside: a rule or grant written
    otherwise than the server writes the DN still applies. Names that are not DNs still match exactly."""
    d = c.directory
    server = ExternalIdentity("ldap", "uid=alice,ou=people,dc=example,dc=gov", "张三", groups=(
        "cn=Data Team,ou=Groups,dc=example,dc=gov", "cn=a+uid=b,ou=groups,dc=x"))
    d.add_rule("group", "CN=data team , OU=groups,DC=Example, DC=GOV", role="editor", by="t")
    d.add_rule("user", "ldap:UID=Alice, OU=People,DC=example,DC=gov", clearance="敏感", by="t")
    d.add_rule("group", "UID=b + CN=A, ou=Groups, dc=X", department="数据资源处", by="t")   # any RDN order
    grant = d.grant("shared", "group", " CN=Data Team,  ou=groups , dc=EXAMPLE,dc=gov ", by="t")
    assert grant["subject"] == "cn=data team,ou=groups,dc=example,dc=gov"     # stored in one spelling
    d.grant("data", "user", "uid=ALICE , ou=people,dc=example,dc=gov", by="t")
    p = c.principals.from_identity(server)
    assert p.role == "editor" and p.levels == ("公开", "内部", "敏感") and "数据资源处" in p.departments
    assert set(p.kbs) == {"shared", "data"}
    assert p.groups == server.groups                                         # shown as the server wrote them
    d.revoke_grant("shared", "group", "cn=DATA TEAM,ou=groups,dc=example,dc=gov")   # any spelling revokes it
    assert set(c.principals.from_identity(server).kbs) == {"data"}
    d.add_rule("group", "Staff", role="admin", by="t")                       # not a DN: exact, as before
    staff = ExternalIdentity("oidc", "s-1", "王五", groups=("staff",))
    assert c.principals.from_identity(staff).role == "reader"


def test_covers_says_whether_a_principal_may_do_all_that_another_may():
    """What an LDAP session's re-check compares: less access ends it; groups and names are no access."""
    from dataclasses import replace
    from assistant.services.access import Principal
    base = Principal("李博", "editor", ("x", "y"), ("办公室",), id="ldap:b", levels=("公开", "内部"), writable=("x",))
    assert base.covers(base) and replace(base, groups=("cn=g",), name="李").covers(base)
    assert replace(base, kbs=("x", "y", "z"), departments=("办公室", "数据资源处")).covers(base)
    for less in (replace(base, role="reader"), replace(base, kbs=("x",)), replace(base, writable=()),
                 replace(base, levels=("公开",)), replace(base, departments=())):
        assert not less.covers(base), less
    assert Principal("王", "admin", (), ("办公室",), levels=("*",)).covers(base)


def test_a_disabled_account_or_a_missing_subject_is_refused(c):
    with pytest.raises(AuthError):
        c.principals.from_identity(ExternalIdentity("ldap", "uid=carol", enabled=False))
    with pytest.raises(AuthError):
        c.principals.from_identity(ExternalIdentity("oidc", ""))


def test_a_key_reads_what_is_granted_to_it_and_its_departments(c):
    secret, rec = c.api_keys.create("oa", "editor", [], ["办公室"])
    assert c.principals.from_key(secret).kbs == ()
    c.directory.grant("office", "department", "办公室", "write", by="t")
    c.directory.grant("shared", "key", rec["id"], by="t")
    p = c.principals.from_key(secret)
    assert set(p.kbs) == {"office", "shared"} and p.can_write("office") and not p.can_write("shared")


def test_bad_rules_and_grants_name_the_field(c):
    d = c.directory
    for call, field in ((lambda: d.add_rule("team", "x", role="reader", by="t"), "kind"),
                        (lambda: d.add_rule("group", "x", role="boss", by="t"), "role"),
                        (lambda: d.add_rule("group", "x", by="t"), "a role, a department or a clearance"),
                        (lambda: d.add_rule("claim", "dept", role="reader", by="t"), "claim=value"),
                        (lambda: d.grant("office", "group", "g", "own", by="t"), "access"),
                        (lambda: d.grant("office", "robot", "g", by="t"), "kind")):
        with pytest.raises(DirectoryError, match=field):
            call()
    with pytest.raises(ValueError, match="clearance"):
        d.add_rule("group", "x", clearance="绝密", by="t")
    d.add_rule("group", "x", role="reader", by="t")
    with pytest.raises(DirectoryError, match="exists"):
        d.add_rule("group", "x", role="reader", by="t")


def test_deleting_a_kb_drops_its_grants(c):
    c.directory.grant("office", "department", "办公室", by="t")
    c.knowledge_bases.delete("office", principal=LOCAL_ADMIN)
    c.knowledge_bases.create("office", principal=LOCAL_ADMIN)         # a new KB of that name starts bare
    assert c.directory.grants("office") == []
    assert c.principals.from_identity(ALICE).kbs == ()


def test_an_open_ui_session_follows_the_directory_and_times_out(c):
    now = [0.0]
    login = Login(c, clock=lambda: now[0])
    rule = c.directory.add_rule("group", EDITORS, role="editor", by="t")
    p = login.with_identity(ALICE)
    assert p.role == "editor" and login.still_valid(p)
    c.access_admin.remove_rule(rule["id"], principal=LOCAL_ADMIN)     # the mapping changed: the session ends
    assert not login.still_valid(p)
    assert login.still_valid(p) is False                              # and stays ended
    q = login.with_identity(ALICE)
    assert q.role == "reader" and login.still_valid(q)
    now[0] += c.settings.identity.session_idle_s + 1                 # idle too long
    assert not login.still_valid(q)
    r = login.with_identity(ALICE)
    for _ in range(int(c.settings.identity.session_max_s // 1000) + 1):   # busy, but past the absolute limit
        now[0] += 1000
        login.still_valid(r)
    assert not login.still_valid(r)
    with pytest.raises(LoginError):
        login.with_identity(ExternalIdentity("ldap", "uid=carol", enabled=False))


def test_only_admins_change_access_and_every_change_is_audited(c):
    reader_secret, _ = c.api_keys.create("r", "reader", ["office"])
    admin_secret, admin = c.api_keys.create("a", "admin", ["*"])
    with TestClient(create_app(c, with_ui=False)) as client:
        hr, ha = ({"Authorization": f"Bearer {s}"} for s in (reader_secret, admin_secret))
        me = client.get("/api/v1/access/me", headers=hr).json()
        assert me["role"] == "reader" and me["kbs"] == ["office"] and me["levels"] == ["公开", "内部"]
        for method, url, body in (("post", "/api/v1/access/rules", {"kind": "group", "match": EDITORS,
                                                                     "role": "admin"}),
                                  ("get", "/api/v1/access/rules", None),
                                  ("post", "/api/v1/access/grants", {"kb": "office", "kind": "user",
                                                                      "subject": "oidc:x"}),
                                  ("get", "/api/v1/access/grants", None)):
            kwargs = {"json": body} if body else {}
            assert getattr(client, method)(url, headers=hr, **kwargs).status_code == 403
        rule = client.post("/api/v1/access/rules", headers=ha,
                           json={"kind": "group", "match": EDITORS, "role": "editor", "clearance": "敏感"})
        assert rule.status_code == 201
        assert client.post("/api/v1/access/grants", headers=ha,
                           json={"kb": "office", "kind": "group", "subject": EDITORS, "access": "write"}
                           ).status_code == 201
        assert client.post("/api/v1/access/grants", headers=ha,
                           json={"kb": "nope", "kind": "group", "subject": EDITORS}).status_code == 404
        assert client.post("/api/v1/access/rules", headers=ha,
                           json={"kind": "group", "match": "x", "clearance": "绝密"}).status_code == 422
        alice = c.principals.from_identity(ALICE)
        assert alice.role == "editor" and alice.can_write("office") and "敏感" in alice.levels
        assert client.delete("/api/v1/access/grants", headers=ha,
                             params={"kb": "office", "kind": "group", "subject": EDITORS}).status_code == 200
        assert client.delete(f"/api/v1/access/rules/{rule.json()['id']}", headers=ha).status_code == 200
        assert c.principals.from_identity(ALICE).kbs == ()
    changes = [e for e in c.audit.tail(50) if e["operation"].startswith("access.")]
    assert [e["operation"] for e in changes] == ["access.rule.add", "access.grant", "access.revoke",
                                                 "access.rule.remove"]
    assert {e["principal"] for e in changes} == {admin["id"]} and all(e["method"] == "API" for e in changes)
    assert changes[1]["detail"] == {"kb": "office", "kind": "group", "subject": EDITORS, "access": "write",
                                    "created_by": admin["id"]}
