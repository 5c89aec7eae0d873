"""The control plane (contract 4): models, service layer, stores, launchers, HTTP API, console."""
