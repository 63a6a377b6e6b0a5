"""Local test bed: Kubernetes API emulator, mesh simulator, Prometheus, receivers."""
