"""Who may connect to ``astrolake serve``: the bind address policy and the HiveServer2 auth settings.

Spark Thrift Server binds every interface by default and trusts any user name. astrolake binds
loopback unless told otherwise, and serves a non-loopback address only with authentication (LDAP,
HiveServer2's ``hive.server2.authentication=LDAP``) or an explicit ``--insecure-no-auth``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from engine.errors import UsageError

AUTH_MODES = ("none", "ldap")


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as e:
        raise UsageError(f"--host {host}: cannot resolve it ({e.strerror or e})") from e
    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_bind(host: str, auth: str, insecure_no_auth: bool) -> None:
    """Refuse to serve a non-loopback address without authentication (unless told explicitly)."""
    if auth not in AUTH_MODES:
        raise UsageError(f"--auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    if auth == "none" and not is_loopback(host) and not insecure_no_auth:
        raise UsageError(
            f"refusing to serve {host} without authentication: anyone who can reach it could read "
            "the lake; use --auth ldap --ldap-url URL --ldap-base-dn DN, bind 127.0.0.1, "
            "or pass --insecure-no-auth"
        )


def auth_settings(auth: str, ldap_url: str | None, ldap_base_dn: str | None) -> dict[str, str]:
    """The HiveServer2 settings (as Spark ``spark.hadoop.*`` settings) for ``auth``."""
    if auth == "none":
        if ldap_url or ldap_base_dn:
            raise UsageError("--ldap-url and --ldap-base-dn need --auth ldap")
        return {"spark.hadoop.hive.server2.authentication": "NONE"}
    if not ldap_url:
        raise UsageError("--auth ldap needs --ldap-url (e.g. ldap://ldap.example.org:389)")
    parsed = urlparse(ldap_url)
    if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
        raise UsageError(f"--ldap-url must be ldap://HOST[:PORT] or ldaps://HOST[:PORT], got {ldap_url!r}")
    if not ldap_base_dn:
        raise UsageError("--auth ldap needs --ldap-base-dn (e.g. ou=people,dc=example,dc=org): "
                         "a user U binds as uid=U,<base dn>")
    return {
        "spark.hadoop.hive.server2.authentication": "LDAP",
        "spark.hadoop.hive.server2.authentication.ldap.url": ldap_url,
        "spark.hadoop.hive.server2.authentication.ldap.baseDN": ldap_base_dn,
    }
