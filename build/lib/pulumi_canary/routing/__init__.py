"""Pure builders of every Kubernetes and Istio object of a canary, for any traffic state.

The component declares the at-rest state with them; the release engine writes every step with
the same functions, so what `pulumi preview` shows is what a release applies.
"""

from .istio import (
    ISTIO_API_VERSION,
    TrafficState,
    destination_rules,
    http_routes,
    route_weights,
    virtual_service,
)
from .workloads import (
    canary_deployment,
    primary_autoscaler,
    primary_deployment,
    services,
)

__all__ = [
    "ISTIO_API_VERSION",
    "TrafficState",
    "canary_deployment",
    "destination_rules",
    "http_routes",
    "primary_autoscaler",
    "primary_deployment",
    "route_weights",
    "services",
    "virtual_service",
]
