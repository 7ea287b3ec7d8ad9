"""The vSphere-cluster reconfigure the placement handler sends for the HA/DRS options.

The lab's simulator keeps no `dasConfig.option` / `drsConfig.option` (see
tests/integration/test_ha_drs.py), so what reaches vCenter is checked here on the spec itself:
every option vCenter shows is sent again, with the planned keys set, and nothing else.
"""

from __future__ import annotations

from pyVmomi import vim

from providers.vcenter.handlers.placement import ClusterBatch
from reconciler.observed import ObservedCluster


def batch(**options: dict[str, str]) -> ClusterBatch:
    now = ObservedCluster(name="Cluster-A", moref="domain-c1", **options)
    return ClusterBatch(obj=None, now=now, ha_entries=set())


def test_planned_options_join_the_ones_vcenter_shows():
    b = batch(das_options={"das.isolationaddress0": "10.0.0.1", "das.respectVmVmAntiAffinityRules": "false"})
    b.das_options["das.respectVmVmAntiAffinityRules"] = "true"
    b.drs_options["ForceAffinePoweron"] = "1"
    spec = b.config_spec()
    assert isinstance(spec, vim.cluster.ConfigSpecEx)
    assert [(o.key, o.value) for o in spec.dasConfig.option] == [
        ("das.isolationaddress0", "10.0.0.1"),  # kept: the vSphere cluster's own option
        ("das.respectVmVmAntiAffinityRules", "true"),
    ]
    assert [(o.key, o.value) for o in spec.drsConfig.option] == [("ForceAffinePoweron", "1")]
    # Only the options: HA and DRS stay as they are (enabled unset with modify=True).
    assert spec.dasConfig.enabled is None and spec.drsConfig.enabled is None


def test_no_planned_option_sends_no_ha_or_drs_config():
    spec = batch(das_options={"das.isolationaddress0": "10.0.0.1"}).config_spec()
    assert spec.dasConfig is None and spec.drsConfig is None
