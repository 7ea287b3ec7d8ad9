"""The rule catalogue: every fact about a supported failover cluster on vSphere, as data.

    findings = run_rules(cluster)                                  # validate: file-only rules
    findings = run_rules(cluster, observed=observed)               # plan: all rules
    loaded.place(findings)                                         # FILE:LINE:COLUMN

See `catalogue.py` for the `Rule` model and how versions are decided.
"""

from reconciler.rules.catalogue import (
    ALL,
    Rule,
    RuleContext,
    Version,
    Versions,
    before,
    catalogue,
    get_rule,
    run_rules,
    since,
    target_version,
)

__all__ = [
    "ALL",
    "Rule",
    "RuleContext",
    "Version",
    "Versions",
    "before",
    "catalogue",
    "get_rule",
    "run_rules",
    "since",
    "target_version",
]
