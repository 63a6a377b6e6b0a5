"""I/O adapters: the cluster, Prometheus, webhooks and alerts. Everything that touches a network."""
