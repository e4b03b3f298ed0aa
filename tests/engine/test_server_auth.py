"""`astrolake serve --auth ldap` against a real OpenLDAP slapd started by the test.

slapd runs on a loopback port with a throw-away mdb database in tmp; the server binds the machine's
non-loopback address (when it has one), so this is the set-up the bind policy asks for.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import SPARK_MISSING
from tests.engine.serving import connect, free_port, non_loopback_address, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.skipif(SPARK_MISSING is not None, reason=str(SPARK_MISSING)),
]
pyhive = pytest.importorskip("pyhive", reason="PyHive is a dev dependency: pip install -e '.[dev]'")

SLAPD = shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin:/usr/local/sbin")
LDAPADD = shutil.which("ldapadd")
SUFFIX = "dc=astrolake,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
ADMIN, ADMIN_PASSWORD = f"cn=admin,{SUFFIX}", "admin-secret"
USERS = {"astronomer": "starlight", "observer": "m31-andromeda"}


@pytest.fixture(scope="module")
def ldap_url(tmp_path_factory):
    if not SLAPD or not LDAPADD:
        pytest.skip("OpenLDAP is not installed (apt-get install slapd ldap-utils; .ci/run installs them)")
    work = tmp_path_factory.mktemp("slapd")
    (work / "db").mkdir()
    conf = work / "slapd.conf"
    schema = Path("/etc/ldap/schema")
    conf.write_text("\n".join([
        *(f"include {schema / name}.schema" for name in ("core", "cosine", "inetorgperson")),
        f"pidfile {work / 'slapd.pid'}",
        "modulepath /usr/lib/ldap", "moduleload back_mdb",
        "database mdb", "maxsize 10485760",
        f'suffix "{SUFFIX}"', f'rootdn "{ADMIN}"', f"rootpw {ADMIN_PASSWORD}",
        f"directory {work / 'db'}", "",
    ]))
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    slapd = subprocess.Popen([SLAPD, "-f", str(conf), "-h", f"{url}/", "-d", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if slapd.poll() is not None:
                pytest.fail(f"slapd did not start: {slapd.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    entries = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: astrolake test\ndc: astrolake\n",
               f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n"]
    entries += [f"dn: uid={user},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {user}\ncn: {user}\nsn: {user}\n"
                f"userPassword: {password}\n" for user, password in USERS.items()]
    added = subprocess.run([LDAPADD, "-x", "-H", url, "-D", ADMIN, "-w", ADMIN_PASSWORD],
                           input="\n".join(entries), capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    yield url
    slapd.terminate()
    slapd.wait(10)


@pytest.fixture(scope="module")
def lake_copy(demo_lake_path, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ldap-served") / "lake"
    shutil.copytree(demo_lake_path, path)
    return path


@pytest.fixture(scope="module")
def served(ldap_url, lake_copy):
    """A server with LDAP on a non-loopback address (when there is one), writes allowed."""
    host = non_loopback_address() or "127.0.0.1"
    server = start_server(lake_copy, lake_copy.parent, "--auth", "ldap", "--ldap-url", ldap_url,
                          "--ldap-base-dn", PEOPLE, "--allow-writes", host=host)
    yield server
    server.stop()


def _count(served, **credentials):
    with connect(served, auth="LDAP", **credentials) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT count(*) FROM signal_events")
        return cursor.fetchall()[0][0]


def test_the_right_password_connects(served):
    assert "LDAP users" in served.banner
    assert _count(served, username="astronomer", password=USERS["astronomer"]) > 0
    assert _count(served, username="observer", password=USERS["observer"]) > 0


@pytest.mark.parametrize("username, password", [
    ("astronomer", "wrong"), ("astronomer", USERS["observer"]), ("nobody", "starlight"), ("astronomer", ""),
])
def test_wrong_password_unknown_user_and_empty_password_are_refused(served, username, password):
    with pytest.raises(Exception) as caught:  # thrift_sasl / thrift transport errors, not one class
        _count(served, username=username, password=password)
    assert "Error validating the login" in str(caught.value)
    assert _count(served, username="astronomer", password=USERS["astronomer"]) > 0  # still serving


def test_nothing_is_served_without_credentials(served):
    with pytest.raises(Exception):
        with connect(served) as conn:  # SASL PLAIN with a user name and no password (auth NONE)
            conn.cursor().execute("SELECT 1")
    with pytest.raises(Exception):
        with connect(served, auth="NOSASL") as conn:
            conn.cursor().execute("SELECT 1")


def test_allow_writes_commits_create_table_as_and_insert_into_the_lake(served, lake_copy):
    from catalogs.lake import Lake

    def run(sql):
        with connect(served, auth="LDAP", username="astronomer", password=USERS["astronomer"]) as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            return cursor.fetchall()

    assert "writes allowed" in served.banner
    made = run("CREATE TABLE strong_hits AS SELECT event_id, target, snr FROM signal_events WHERE snr > 200")
    lake = Lake(lake_copy, create=False)
    rows = lake.info("strong_hits").rows
    assert made == [("strong_hits", 0, rows)] and rows > 0
    added = run("INSERT INTO strong_hits SELECT event_id, target, snr FROM signal_events WHERE snr BETWEEN 190 AND 200")
    assert added[0][:2] == ("strong_hits", 1)
    assert run("SELECT count(*) FROM strong_hits") == [(rows + added[0][2],)]  # the next query sees it
    with pytest.raises(Exception, match="DropTable statements are refused"):
        run("DROP TABLE strong_hits")
