"""I/O with the outside world: vCenter (pyvmomi) and the Windows guests."""
