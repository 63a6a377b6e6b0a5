"""Which hosts name a Kubernetes Service: the DNS shapes a pod's resolver expands in-cluster.

One rule for the gate, which sends such URLs through the API server's service proxy, and for
the policy pack, which asks whether a webhook's traffic leaves the cluster.
"""

from __future__ import annotations

import ipaddress

DEFAULT_CLUSTER_DOMAIN = "cluster.local"


def service_of_host(
    host: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> tuple[str, str] | None:
    """(service, namespace) when `host` has the shape of a Service's in-cluster DNS name.

    One label (`svc`, in `namespace`), two labels read as `<svc>.<ns>` (as the pod's DNS search
    path does), or `<svc>.<ns>.svc[.<cluster domain>]`. IP addresses and every other name are
    not Services (a pod's `<pod>.<svc>.<ns>.svc` name is in-cluster but not a Service).
    """
    name, _ = _without_cluster_suffix(host, cluster_domain)
    labels = name.split(".")
    if not name or _is_ip(name) or len(labels) > 2 or not all(labels):
        return None
    return labels[0], labels[1] if len(labels) == 2 else namespace


def is_in_cluster(host: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> bool:
    """Whether Kubernetes DNS resolves `host` inside the cluster, so traffic stays there."""
    name, suffixed = _without_cluster_suffix(host, cluster_domain)
    return suffixed or service_of_host(name, "default", cluster_domain) is not None


def _without_cluster_suffix(host: str, cluster_domain: str) -> tuple[str, bool]:
    name = host.lower().rstrip(".")
    for suffix in (f".svc.{cluster_domain.lower().strip('.')}", ".svc"):
        if name.endswith(suffix):
            return name.removesuffix(suffix), True
    return name, False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
