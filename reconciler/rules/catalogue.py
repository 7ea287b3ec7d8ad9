"""The rule catalogue: what a supported failover cluster on vSphere looks like, as data.

A rule is an ID that never changes, a severity, a one-line title, where the fact comes from
(`[ch]` the vSphere 4 book chapter the project started from, `[vmw X]` VMware's *Setup for
Failover Clustering and Microsoft Cluster Service* / *Setup for Windows Server Failover
Clustering* guide for vSphere X, `[kb N]` a VMware knowledge-base article), the vSphere
versions it applies to, and a check: a function of the desired file (and, for
`needs_observed` rules, of what vCenter shows) yielding findings.

Where no VMware guide or KB for the versions a rule covers could be found to state the fact,
the rule says so (`unsourced=`: what was looked for) and is a warning, never an error: the
project does not refuse a configuration on the strength of a source it cannot name.

Where the book and VMware's later guides disagree, there are two rules, each with its own
version range, and the message says which source applies and why.

Adding a rule is adding one `@rule(...)` function in the subject module (`nodes`, `storage`,
`network`, `guest`, `placement`, `hosts`, `inventory`, `safety`, `fleet`, `clustered_vmdk`,
`forbidden`) and one failing-file test. The `forbidden` rules (MSCS-VM-*) judge the node VMs'
own settings as vCenter shows them (snapshots, hot-add, multi-writer, FT, the guest OS); drift
reports them too.

The `safety` rules guard the data: what mscsctl may touch is proved in vCenter, never taken
from the state alone, and a LUN serves one cluster. `fleet` rules look at every cluster of a
run together (`fleet.fleet_findings`); `run_rules` leaves them out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from reconciler.findings import FieldPath, Finding, Severity
from reconciler.observed import Observed
from reconciler.spec import ClusterSpec, FailoverCluster, PhysicalNode, VmNode, parse_version, with_defaults

if TYPE_CHECKING:
    from reconciler.address import Address
    from state.model import ManagedResource

Version = tuple[int, int]


@dataclass(frozen=True)
class Versions:
    """The vSphere versions a rule applies to: `since <= version < until`."""

    since: Version | None = None
    until: Version | None = None

    @property
    def text(self) -> str:
        if self.since and self.until:
            return f">= {_v(self.since)}, < {_v(self.until)}"
        if self.since:
            return f">= {_v(self.since)}"
        if self.until:
            return f"< {_v(self.until)}"
        return "all"

    @property
    def all(self) -> bool:
        return self.since is None and self.until is None

    def applies(self, version: Version | None) -> bool | None:
        """True or False; None when the version is unknown and the range is not `all`."""
        if self.all:
            return True
        if version is None:
            return None
        return (self.since is None or version >= self.since) and (self.until is None or version < self.until)


def _v(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


ALL = Versions()


def before(major: int, minor: int = 0) -> Versions:
    return Versions(until=(major, minor))


def since(major: int, minor: int = 0) -> Versions:
    return Versions(since=(major, minor))


def between(first: Version, end: Version) -> Versions:
    """From `first` up to, not including, `end`."""
    return Versions(since=first, until=end)


@dataclass(frozen=True)
class RuleContext:
    """What a check sees.

    `cluster` is the file as written (to tell a written value from a default); `spec` is the
    effective spec with every default filled (`with_defaults`), which is what gets built.
    `version` is the target vSphere version, or None when unknown (`auto` at validate).
    """

    cluster: FailoverCluster
    effective: FailoverCluster
    version: Version | None = None
    observed: Observed | None = None
    rule: Rule | None = None
    # What the state recorded (address -> resource), when there is one; the safety rules check
    # its claims against vCenter.
    managed: Mapping[Address, ManagedResource] = field(default_factory=dict)
    # For a fleet rule: the other clusters of the run, with the files they come from.
    fleet: tuple[FleetMember, ...] = ()

    @property
    def spec(self) -> ClusterSpec:
        return self.effective.spec

    @property
    def written(self) -> ClusterSpec:
        return self.cluster.spec

    @property
    def vm_nodes(self) -> list[tuple[int, VmNode]]:
        return [(i, n) for i, n in enumerate(self.spec.nodes) if isinstance(n, VmNode)]

    @property
    def physical_nodes(self) -> list[tuple[int, PhysicalNode]]:
        return [(i, n) for i, n in enumerate(self.spec.nodes) if isinstance(n, PhysicalNode)]

    @property
    def version_text(self) -> str:
        return _v(self.version) if self.version else "this version"

    def finding(self, path: FieldPath, message: str) -> Finding:
        """A finding of the rule being run, about the field at `path` (YAML names)."""
        assert self.rule is not None
        return Finding(rule_id=self.rule.id, severity=self.rule.severity, message=message, path=path)


@dataclass(frozen=True)
class FleetMember:
    """Another cluster of the same run, as a fleet rule sees it."""

    cluster: FailoverCluster  # with its defaults
    file: str
    same_vcenter: bool = True  # VM and host names mean the same object only within one vCenter


Check = Callable[[RuleContext], Iterable[Finding]]

_CITATION = re.compile(r"\[([^\]]+)\]")


def citations(source: str) -> list[str]:
    """The bracketed citations of a source text, in order: `["ch", "vmw 6.7", "kb 79616"]`;
    `mscsctl` for a rule of the project's own (what it needs to manage the cluster safely, not a
    VMware fact), whose source text starts with "mscsctl"."""
    own = ["mscsctl"] if source.startswith("mscsctl") else []
    return own + [c.strip() for c in _CITATION.findall(source)]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    source: str
    versions: Versions
    needs_observed: bool
    check: Check = field(repr=False, compare=False)
    fleet: bool = False  # looks at every cluster of a run together (`fleet.fleet_findings`)
    # What could not be found: no guide or KB of the versions the rule covers states the fact.
    unsourced: str | None = None

    @property
    def sources(self) -> list[str]:
        return citations(self.source)

    @property
    def source_text(self) -> str:
        """The source as printed: the citations, and what could not be found."""
        return f"{self.source}; no source found: {self.unsourced}" if self.unsourced else self.source

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "severity": self.severity.value,
            "title": self.title,
            "source": self.source_text,
            "sources": self.sources,
            "source_found": self.unsourced is None,
            "unsourced": self.unsourced,
            "versions": self.versions.text,
            "since": _v(self.versions.since) if self.versions.since else None,
            "until": _v(self.versions.until) if self.versions.until else None,
            "needs_observed": self.needs_observed,
        }


_REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    *,
    title: str,
    source: str,
    severity: Severity = Severity.ERROR,
    versions: Versions = ALL,
    needs_observed: bool = False,
    fleet: bool = False,
    unsourced: str | None = None,
) -> Callable[[Check], Check]:
    """Register a check in the catalogue.

    `unsourced`: what no guide or KB could be found to state (e.g. "no 5.x-8.x guide lists
    these options"); such a rule is a warning.
    """

    def register(check: Check) -> Check:
        if id in _REGISTRY:
            raise ValueError(f"rule {id} is registered twice")
        if "\n" in title:
            raise ValueError(f"rule {id}: the title is one line")
        if unsourced and severity is not Severity.WARNING:
            raise ValueError(f"rule {id}: a rule without a source for its versions is a warning")
        _REGISTRY[id] = Rule(id, severity, title, source, versions, needs_observed, check, fleet, unsourced)
        return check

    return register


def catalogue() -> list[Rule]:
    """Every rule, sorted by ID."""
    _load_subjects()
    return sorted(_REGISTRY.values(), key=lambda r: _sort_key(r.id))


def get_rule(rule_id: str) -> Rule:
    _load_subjects()
    return _REGISTRY[rule_id]


# Catalogue order: the file's own subjects first, then what needs vCenter.
_PREFIX_ORDER = ("NODE", "DISK", "NET", "GUEST", "PLACE", "HOST", "STOR", "VM", "INV", "SAFE")


def _sort_key(rule_id: str) -> tuple[int, str, int]:
    prefix, _, number = rule_id.rpartition("-")
    group = prefix.removeprefix("MSCS-")
    rank = _PREFIX_ORDER.index(group) if group in _PREFIX_ORDER else len(_PREFIX_ORDER)
    return rank, prefix, int(number) if number.isdigit() else 0


def _load_subjects() -> None:
    # The subject modules register their rules when imported.
    from reconciler.rules import (  # noqa: F401
        clustered_vmdk,
        disks,
        fleet,
        forbidden,
        guest,
        hosts,
        inventory,
        network,
        nodes,
        placement,
        safety,
        storage,
    )


def target_version(cluster: FailoverCluster, observed: Observed | None = None) -> Version | None:
    """The vSphere version the rules check against.

    Pinned in the file (`vsphereVersion: "6.7"`): that. `auto`: the oldest ESXi version
    among the hosts running the nodes, when vCenter has been read; otherwise unknown.
    """
    pinned = cluster.spec.vsphere_version
    if pinned != "auto":
        return parse_version(pinned)
    if observed is None:
        return None
    versions = []
    for name in cluster.spec.vm_names:
        host = observed.host_of(name)
        if host is not None and host.version_tuple is not None:
            versions.append(host.version_tuple)
    return min(versions) if versions else None


def run_rules(
    cluster: FailoverCluster,
    *,
    version: Version | None = None,
    observed: Observed | None = None,
    managed: Mapping[Address, ManagedResource] | None = None,
) -> list[Finding]:
    """Run the catalogue against one desired file; findings carry field paths, not positions.

    File-only rules always run; rules that need what vCenter shows run only when `observed`
    is given (`managed`, the state's resources, for the rules that check its claims). Fleet
    rules are left out (`fleet.fleet_findings`). `version` defaults to
    `target_version(cluster, observed)`. A rule limited to some vSphere versions stays silent
    while the version is unknown. Locate the findings with `LoadedFile.place()`.
    """
    if version is None:
        version = target_version(cluster, observed)
    base = RuleContext(
        cluster=cluster,
        effective=with_defaults(cluster, version),
        version=version,
        observed=observed,
        managed=managed or {},
    )
    findings: list[Finding] = []
    for r in catalogue():
        if r.fleet or (r.needs_observed and observed is None):
            continue
        if not r.versions.applies(version):
            continue
        findings.extend(r.check(replace(base, rule=r)))
    return findings
