"""Clustered-VMDK support of a datastore that holds the cluster's clustered VMDKs.

ESXi emulates the SCSI-3 persistent reservations WSFC arbitrates with on a VMDK only on a
datastore whose clustered-VMDK support is enabled (`HostDatastoreSystem.
EnableClusteredVmdkSupport`, vSphere API 7.0; the datastore's `capability.
clusteredVmdkSupported` shows it). The plan enables it before any disk is created there; it is
never disabled by mscsctl (other clusters may keep their disks on the same datastore). Whether
a datastore can have it at all (VMFS6, Fibre Channel, 512-byte sectors, its LUN presented to
ESXi 7.0+ hosts only) is for the rules (`reconciler.rules.clustered_vmdk`) to say, before any
change.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from reconciler.address import Address, Scope
from reconciler.kinds.base import ActionKind, Context, Managed, ObservedSide, Payload, ResourceKind, fixed
from reconciler.observed import Observed
from reconciler.spec import FailoverCluster

NAME = "datastore"


class ClusteredVmdkSupportPayload(Payload):
    clustered_vmdk_supported: bool = Field(alias="clusteredVmdkSupported")


def clustered_datastores(cluster: FailoverCluster) -> list[str]:
    """The datastores that hold the file's clustered VMDKs, in file order, each once."""
    return list(dict.fromkeys(disk.datastore for _, disk in cluster.spec.clustered_vmdks))


def desired(cluster: FailoverCluster, ctx: Context, observed: Observed) -> Iterator[tuple[Address, Payload]]:
    for name in clustered_datastores(cluster):
        yield (
            Address.vsphere_cluster(cluster.name, NAME, name),
            ClusteredVmdkSupportPayload(clustered_vmdk_supported=True),
        )


def observe(cluster: FailoverCluster, observed: Observed, ctx: Context, managed: Managed, out: ObservedSide) -> None:
    for name in clustered_datastores(cluster):
        ds = observed.datastores.get(name)
        if ds is not None:
            out.tree[Address.vsphere_cluster(cluster.name, NAME, name)] = ClusteredVmdkSupportPayload(
                clustered_vmdk_supported=bool(ds.clustered_vmdk_supported)
            )


KIND = ResourceKind(
    name=NAME,
    title="clustered-VMDK datastore",
    scope=Scope.VSPHERE_CLUSTER,
    payload=ClusteredVmdkSupportPayload,
    state_kind=fixed("clustered-vmdk-datastore"),
    actions=(ActionKind.ENABLE_CLUSTERED_VMDK,),
    desired=desired,
    observed=observe,
    critical_fields=frozenset({"clusteredVmdkSupported"}),
    critical_presence=True,
    doc="Enabled once per datastore of the clustered VMDKs, before any node is touched; never disabled.",
)
