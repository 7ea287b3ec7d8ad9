"""vCenter handlers, one module a resource kind: each re-reads its target right before acting,
compares it, converted as observe converts it, with the action's `after`, and either does
nothing ("already satisfied") or builds the spec and runs the task. `providers.vcenter.executor`
dispatches each step of a plan to its handler."""
