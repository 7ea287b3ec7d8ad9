"""Desired files for the lab's fleet generator (`lab --fleet N`): one cross-box cluster each.

Naming follows tests/lab/fleet.go: cluster `Fleet-NN` with VMs `FNN-NODE1`/`FNN-NODE2` on two
hosts, the shared VMFS `SAN-VMFS-NN` and the LUNs `naa.60060160123456780000000000NN0001`/`…0002`.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def fleet_cluster(n: int) -> dict:
    nn = f"{n:02d}"
    base = f"naa.60060160123456780000000000{nn}"
    return {
        "apiVersion": "mscsctl/v1",
        "kind": "FailoverCluster",
        "metadata": {"name": f"fleet-{nn}"},
        "spec": {
            "topology": "cluster-across-boxes",
            "datacenter": "DC1",
            "guestOS": "windows2019",
            "nodes": [{"vm": f"F{nn}-NODE1"}, {"vm": f"F{nn}-NODE2"}],
            "sharedDisks": {
                "disks": [
                    {"name": "quorum", "lun": f"{base}0001", "unit": 0, "mappingDatastore": f"SAN-VMFS-{nn}"},
                    {"name": "data", "lun": f"{base}0002", "unit": 1, "mappingDatastore": f"SAN-VMFS-{nn}"},
                ]
            },
            "networks": {"production": {"portgroup": "Production"}, "heartbeat": {"portgroup": "Heartbeat"}},
        },
    }


def write_fleet(n: int, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        path = directory / f"fleet-{i:02d}.yaml"
        path.write_text(yaml.safe_dump(fleet_cluster(i), sort_keys=False))
        paths.append(path)
    return paths
