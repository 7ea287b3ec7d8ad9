"""mscsctl's core: the desired-state model, rules, diff, plan and the apply loop."""

__version__ = "0.1.0"
