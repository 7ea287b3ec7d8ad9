"""Lab files and desired files for fleets of any size (the lab's own `--fleet` stops at 99).

Cluster i (from 1) is `Bench-NNNN` with hosts `esx-bNNNN-1/2.lab.local`, VMs `BNNNN-NODE1/2`, the
datastore `SAN-BNNNN` on LUN `naa.6006016012345678 00000000 NNNN 0000` and two shared LUNs
`…NNNN0001`, `…NNNN0002`, as `tests/lab/fleet.go` builds its clusters, four digits wide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.fleet import fleet_cluster

CREDENTIALS = {"username": "administrator@vsphere.local", "password": "Lab-Passw0rd!"}


def _ids(i: int) -> dict[str, str]:
    nnnn = f"{i:04d}"
    return {
        "cluster": f"Bench-{nnnn}",
        "h1": f"esx-b{nnnn}-1.lab.local",
        "h2": f"esx-b{nnnn}-2.lab.local",
        "lun": f"naa.600601601234567800000000{nnnn}",
        "ds": f"SAN-B{nnnn}",
        "vm": f"B{nnnn}",
    }


def lab_file(clusters: int) -> dict[str, Any]:
    """A lab of `clusters` cross-box clusters (2 hosts, 2 VMs, 1 datastore, 3 LUNs each)."""
    doc: dict[str, Any] = {
        "datacenter": "DC1",
        "credentials": CREDENTIALS,
        "portgroups": [{"name": "Production", "vlan": 10}, {"name": "Heartbeat", "vlan": 20}],
        "clusters": [],
        "luns": [],
        "datastores": [],
        "vms": [],
    }
    for i in range(1, clusters + 1):
        ids = _ids(i)
        doc["clusters"].append({"name": ids["cluster"], "hosts": [{"name": ids["h1"]}, {"name": ids["h2"]}]})
        doc["luns"] += [
            {"naa": ids["lun"] + "0000", "capacityGiB": 500, "clusters": [ids["cluster"]]},
            {"naa": ids["lun"] + "0001", "capacityGiB": 10, "clusters": [ids["cluster"]]},
            {"naa": ids["lun"] + "0002", "capacityGiB": 10, "clusters": [ids["cluster"]]},
        ]
        doc["datastores"].append({"name": ids["ds"], "type": "vmfs", "lun": ids["lun"] + "0000"})
        doc["vms"] += [
            {"name": ids["vm"] + "-NODE1", "host": ids["h1"], "datastore": ids["ds"]},
            {"name": ids["vm"] + "-NODE2", "host": ids["h2"], "datastore": ids["ds"]},
        ]
    return doc


def desired(i: int) -> dict[str, Any]:
    """The desired file of cluster i: the lab fleet's (tests/fleet.py), with this fleet's names."""
    ids = _ids(i)
    doc = fleet_cluster(1)
    doc["metadata"]["name"] = f"bench-{i:04d}"
    spec = doc["spec"]
    spec["nodes"] = [{"vm": ids["vm"] + "-NODE1"}, {"vm": ids["vm"] + "-NODE2"}]
    for disk, suffix in zip(spec["sharedDisks"]["disks"], ("0001", "0002"), strict=True):
        disk.update(lun=ids["lun"] + suffix, mappingDatastore=ids["ds"])
    return doc


def write_lab(clusters: int, path: Path) -> Path:
    path.write_text(yaml.safe_dump(lab_file(clusters), sort_keys=False))
    return path


def write_desired(first: int, count: int, directory: Path) -> Path:
    """The desired files of clusters first .. first+count-1, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        (directory / f"bench-{i:04d}.yaml").write_text(yaml.safe_dump(desired(i), sort_keys=False))
    return directory


def vm_names(first: int, count: int) -> list[str]:
    return [f"{_ids(i)['vm']}-NODE{k}" for i in range(first, first + count) for k in (1, 2)]
