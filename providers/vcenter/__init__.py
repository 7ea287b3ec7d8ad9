"""vCenter: connection, the one PropertyCollector read, and the actions that change vCenter."""
