"""Addresses: typed values whose text form reads back exactly, whatever the names hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.address import Address, AddressError, Scope
from reconciler.diff import Op
from reconciler.plan import Action, ActionKind, Reason

names = st.text(min_size=0, max_size=20)
kinds = st.sampled_from(["controller", "disk", "nic", "power", "drs", "ha", "guest", "option", "lun", "rule"])


def test_plain_names_read_as_they_always_did():
    assert str(Address.node("sql-prod-01", "SQLNODE1", "disk", "quorum")) == "sql-prod-01/node/SQLNODE1/disk/quorum"
    assert str(Address.node("sql-prod-01", "SQLNODE1", "power")) == "sql-prod-01/node/SQLNODE1/power"
    assert str(Address.host("c", "esx-a1.lab.local", "option", "Disk.UseLunReset")) == (
        "c/host/esx-a1.lab.local/option/Disk.UseLunReset"
    )
    assert str(Address.vsphere_cluster("c", "rule", "mscsctl-c")) == "c/rule/mscsctl-c"


def test_a_vm_name_with_a_slash_keeps_every_part_in_place():
    address = Address.node("sql-prod-01", "SQL/NODE 1", "drs")
    text = str(address)
    assert text == 'sql-prod-01/node/"SQL/NODE 1"/drs'
    parsed = Address.parse(text)
    assert (parsed.owner, parsed.kind, parsed.name, parsed.scope) == ("SQL/NODE 1", "drs", "", Scope.NODE)


def test_quotes_percent_spaces_and_unicode():
    address = Address.node("c", "Ö'NODE%2", "nic", "heartbeat")
    assert str(address) == "c/node/Ö'NODE%2/nic/heartbeat"  # nothing to quote
    odd = Address.node("c", 'a"b\\c', "disk", " padded ")
    assert str(odd) == 'c/node/"a\\"b\\\\c"/disk/" padded "'
    assert Address.parse(str(odd)) == odd


@given(cluster=names, owner=names, kind=kinds, name=names, scope=st.sampled_from(list(Scope)))
def test_every_address_round_trips_through_its_text(cluster, owner, kind, name, scope):
    if scope is Scope.VSPHERE_CLUSTER:
        address = Address.vsphere_cluster(cluster, kind, name)
    else:
        address = Address(cluster, scope, owner, kind, name)
    assert Address.parse(str(address)) == address


def test_order_is_that_of_the_text():
    a = Address.host("c", "h", "option", "x")
    b = Address.node("c", "n", "disk", "d")
    r = Address.vsphere_cluster("c", "rule", "r")
    assert sorted([r, b, a]) == [a, b, r]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "c",
        "c/node",
        "c/node/N",
        'c/node/"N/disk/q',
        "c/node/N/disk/q/extra",
        'c/node/N"x/disk/q',
        "c/rule/",
        "c//rule/r",
        "/node/N/power",
    ],
)
def test_text_that_is_no_address_is_refused(text):
    with pytest.raises(AddressError):
        Address.parse(text)


def test_a_plan_action_keeps_the_text_form_in_json():
    address = Address.node("c", "SQL/NODE 1", "nic", "production")
    action = Action(
        id=f"{address}#{ActionKind.ADD_NIC}",
        address=address,
        kind=ActionKind.ADD_NIC,
        op=Op.CREATE,
        target="SQL/NODE 1",
        after={"portgroup": "Prod Net", "adapter": "vmxnet3"},
        reason=Reason.MISSING,
    )
    data = json.loads(action.model_dump_json())
    assert data["address"] == 'c/node/"SQL/NODE 1"/nic/production'
    assert data["after"] == {"portgroup": "Prod Net", "adapter": "vmxnet3"}
    again = Action.model_validate(data)
    assert again == action and again.address.owner == "SQL/NODE 1"
