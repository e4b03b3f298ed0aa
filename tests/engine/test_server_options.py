"""`astrolake serve` options and the bind policy, without starting Spark."""

import pytest

from engine.errors import UsageError
from engine.server import LakeServer, ServerOptions
from engine.server_auth import auth_settings, check_bind, is_loopback
from tests.conftest import run_astrolake


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.53", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.168.0.10", False),
])
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_needs_auth_or_an_explicit_insecure_flag():
    check_bind("127.0.0.1", "none", False)
    check_bind("0.0.0.0", "ldap", False)
    check_bind("0.0.0.0", "none", True)
    with pytest.raises(UsageError, match="refusing to serve 0.0.0.0 without authentication"):
        check_bind("0.0.0.0", "none", False)


def test_ldap_settings_are_checked():
    assert auth_settings("none", None, None) == {"spark.hadoop.hive.server2.authentication": "NONE"}
    ldap = auth_settings("ldap", "ldap://127.0.0.1:3890", "ou=people,dc=astrolake,dc=test")
    assert ldap["spark.hadoop.hive.server2.authentication"] == "LDAP"
    assert ldap["spark.hadoop.hive.server2.authentication.ldap.baseDN"] == "ou=people,dc=astrolake,dc=test"
    with pytest.raises(UsageError, match="--auth ldap needs --ldap-url"):
        auth_settings("ldap", None, "dc=x")
    with pytest.raises(UsageError, match="--ldap-url must be ldap://"):
        auth_settings("ldap", "http://x", "dc=x")
    with pytest.raises(UsageError, match="needs --ldap-base-dn"):
        auth_settings("ldap", "ldap://x", None)
    with pytest.raises(UsageError, match="need --auth ldap"):
        auth_settings("none", "ldap://x", None)


def test_limits_become_thrift_server_settings(tmp_path):
    settings = LakeServer(ServerOptions(lake=str(tmp_path), port=10123, query_timeout_s=7)).settings()
    assert settings["spark.sql.thriftServer.queryTimeout"] == "7s"
    assert settings["spark.sql.hive.thriftServer.singleSession"] == "true"
    assert settings["spark.hadoop.hive.server2.thrift.bind.host"] == "127.0.0.1"
    assert settings["spark.hadoop.hive.server2.thrift.port"] == "10123"


def test_the_command_refuses_an_open_bind_before_starting_anything(tmp_path):
    done = run_astrolake("--lake", str(tmp_path / "lake"), "serve", "--host", "0.0.0.0")
    assert done.returncode == 2
    assert done.stderr.startswith("error: refusing to serve 0.0.0.0 without authentication")
    assert "java" not in done.stderr.lower()
    done = run_astrolake("--lake", str(tmp_path / "lake"), "serve", "--auth", "ldap")
    assert done.returncode == 2 and "error: --auth ldap needs --ldap-url" in done.stderr


def test_serving_an_empty_place_is_refused(tmp_path):
    done = run_astrolake("--lake", str(tmp_path / "nothing"), "serve")
    assert done.returncode == 1 and "error: no lake at" in done.stderr


def test_the_gate_sorts_statements():
    from engine.server import LAKE_WRITES, READ_COMMANDS, _refusal

    assert "ShowTables" in READ_COMMANDS and "DropTable" not in READ_COMMANDS
    assert LAKE_WRITES == {"CreateTableAsSelect", "ReplaceTableAsSelect", "InsertIntoStatement"}
    assert "--allow-writes" in _refusal("InsertIntoStatement")
    assert _refusal("DropTable").startswith("DropTable statements are refused over JDBC")
