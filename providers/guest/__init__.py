"""Windows guests: facts (command + strict parser) and transports (VMware Tools, WinRM)."""
