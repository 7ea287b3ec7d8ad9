"""The credentials file for the vCenters desired files name, and which login goes where."""

from __future__ import annotations

import os

import pytest

from providers.vcenter.connection import ConnectionSettings, read_credentials, settings_for, vcenter_key
from reconciler.errors import VCenterConnectionError


def _write(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "credentials.yaml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_one_spelling_of_a_vcenter():
    assert vcenter_key("VC2.example.com") == vcenter_key("https://vc2.example.com:443/sdk") == "vc2.example.com:443"
    assert vcenter_key("vc2:8989") == "vc2:8989"


def test_entries_by_vcenter_with_the_ca_file_beside_the_file(tmp_path):
    path = _write(
        tmp_path,
        "vcenters:\n  https://VC2.example.com/sdk:\n    user: svc@vsphere.local\n    password: 'p:w'\n"
        "    ca_file: vc2-ca.pem\n",
    )
    found = read_credentials(path)["vc2.example.com:443"]
    assert (found.host, found.port, found.user, found.password) == ("VC2.example.com", 443, "svc@vsphere.local", "p:w")
    assert found.ca_file == str(tmp_path / "vc2-ca.pem") and not found.allow_unverified
    assert "p:w" not in repr(found)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("vcenters: [a]\n", "expected one key, `vcenters:`"),
        ("vcenters: {}\nextra: 1\n", "expected one key, `vcenters:`"),
        ("vcenters:\n  vc2: {user: u}\n", "vcenters.vc2: needs `user` and `password`"),
        ("vcenters:\n  vc2: {user: u, password: p, pasword: q}\n", "nothing else"),
        ("vcenters:\n  vc2: [\n", ":3: not YAML"),
    ],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path, text, says):
    path = _write(tmp_path, text)
    with pytest.raises(VCenterConnectionError) as err:
        read_credentials(path)
    assert str(err.value).startswith(str(path)) and says in str(err.value)


def test_a_file_others_can_read_is_refused_unread(tmp_path):
    path = _write(tmp_path, "not: [yaml", mode=0o640)
    with pytest.raises(VCenterConnectionError, match="chmod 600"):
        read_credentials(path)


def test_the_default_login_goes_only_to_the_default_server():
    default = ConnectionSettings(host="vc1.example.com", port=443, user="u", password="secret")
    assert settings_for("https://VC1.example.com/sdk", lambda: default, dict) is default
    with pytest.raises(VCenterConnectionError, match=r"no login for vCenter vc2\.example\.com:443"):
        settings_for("vc2.example.com", lambda: default, dict)
    other = ConnectionSettings(host="vc2.example.com", port=443, user="v", password="other")
    assert settings_for("vc2.example.com", lambda: default, lambda: {"vc2.example.com:443": other}) is other


def test_a_run_reads_the_credentials_file_once_for_all_its_clusters(tmp_path):
    from reconciler.run import Connection

    entries = "  vc2.example.com: {user: u, password: p}\n  vc3.example.com: {user: v, password: q}\n"
    path = _write(tmp_path, "vcenters:\n" + entries)
    login = Connection(credentials_file=str(path)).logins()
    assert login("vc2.example.com").user == "u"
    path.unlink()  # read already: the other clusters' vCenters come from the same reading
    assert login("https://vc3.example.com/sdk").user == "v" and login("vc2.example.com").user == "u"
