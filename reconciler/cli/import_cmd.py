"""`mscsctl import`: adopt a failover cluster built by hand (a desired file and its state)."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.cli import app, output
from reconciler.cli.options import with_run_options
from reconciler.importer import ImportRequest, ImportResult, import_cluster
from reconciler.render import summary
from reconciler.run import RunOptions


@app.command("import")
@output.reports_errors
@with_run_options(guest=False, lock=False)
def import_command(
    datacenter: str = typer.Option(..., "--datacenter", help="vCenter datacenter of the nodes."),
    vms: list[str] | None = typer.Option(
        None, "--vm", help="A node VM, node 1 first: twice for two nodes, once with --physical."
    ),
    vsphere_cluster: str | None = typer.Option(
        None, "--cluster", help="Pick the node VMs within this vSphere cluster, by --vm-pattern."
    ),
    vm_pattern: str | None = typer.Option(
        None, "--vm-pattern", help="Glob of the node VMs' names within --cluster, e.g. 'SQL*' (nodes in name order)."
    ),
    physical: str | None = typer.Option(
        None, "--physical", help="The physical node of a physical-to-virtual cluster (one --vm)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="metadata.name (default: the folder that holds the shared disks' files)."
    ),
    out: Path | None = typer.Option(None, "--out", help="The desired file to write (default: NAME.yaml)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing desired file and state."),
    *,
    options: RunOptions,
) -> int:
    """Write the desired file of a cluster built by hand, and record its state as if mscsctl had applied it.

    Reads vCenter only (nothing is changed there): the topology, guestOS, shared controller
    and disks, networks, host options and placement come from what vCenter shows; the guests
    are not asked (as with --skip-guest), so guest.diskTimeoutSeconds is the default 60 and
    `plan` checks it. The rule catalogue's findings are printed. The state goes where `plan`
    and `apply` of that file look for it (--state, --state-dir, $MSCSCTL_STATE, else beside
    the file), every object as not created by mscsctl, so mscsctl never deletes them; then
    `mscsctl plan FILE` shows no change to the nodes.

    Refused, with the reason and nothing written: nodes whose shared disks differ, a shared
    disk on bus 0, more than two nodes, no shared disk, an unknown guest OS, a shared file
    that is not where the file format puts it, a rule error, an existing file or state
    (without --force).

    Exit codes: 0 imported, 1 refused or error.
    """
    request = ImportRequest(
        datacenter=datacenter,
        vms=tuple(vms or ()),
        vsphere_cluster=vsphere_cluster,
        vm_pattern=vm_pattern,
        physical=physical,
        name=name,
    )
    result = import_cluster(
        request, out=out, connection=options.connection, state=options.state, state_dir=options.state_dir, force=force
    )
    _report(result)
    return 0


def _report(result: ImportResult) -> None:
    console = output.stdout()
    for finding in result.findings:
        if not output.is_quiet():
            console.print(str(finding), style="yellow", markup=False, highlight=False)
    spec = result.cluster.spec
    disks = len(spec.shared_disks.disks)
    nodes = " and ".join(spec.node_names)
    console.print(
        f"Wrote {result.desired_file}: {result.cluster.name}, {spec.topology}, nodes {nodes}, "
        f"{disks} shared disk{'s' if disks != 1 else ''} on bus {spec.shared_disks.controller.bus}.",
        markup=False,
        highlight=False,
    )
    console.print(
        f"Recorded {result.recorded} objects in the state {result.state}, none created by mscsctl "
        "(it never deletes them). Nothing was changed in vCenter.",
        markup=False,
        highlight=False,
    )
    if result.pending:
        console.print(
            f"The next plan still changes {len(result.pending)} thing(s) the file asks for and vCenter lacks "
            "(none on the nodes' devices):",
            markup=False,
            highlight=False,
        )
        for action in result.pending:
            console.print(f"  {action.kind} {action.address}: {summary(action)}", markup=False, highlight=False)
    else:
        console.print(
            f"vCenter matches the file: `mscsctl plan {result.desired_file}` shows no changes.",
            markup=False,
            highlight=False,
        )
    if result.unmanaged:
        output.info("Left alone (not the cluster's devices): " + "; ".join(result.unmanaged))
