"""Transfer use cases independent of HTTP, shared by the Transfer API and the web UI."""
