"""Pure builders of every Kubernetes and Istio object of a canary, for any traffic state.

The component declares the at-rest state with them; the release engine writes every step with
the same functions, so what `pulumi preview` shows is what a release applies.
"""

from .configs import CONFIGS_ANNOTATION, primary_config, primary_config_name
from .istio import (
    ISTIO_API_VERSION,
    RouteField,
    TrafficState,
    destination_rules,
    owned_route_field,
    route_field,
    route_weights,
    routes,
    virtual_service,
)
from .workloads import (
    canary_deployment,
    primary_autoscaler,
    primary_deployment,
    services,
)

__all__ = [
    "CONFIGS_ANNOTATION",
    "ISTIO_API_VERSION",
    "RouteField",
    "TrafficState",
    "canary_deployment",
    "destination_rules",
    "owned_route_field",
    "primary_autoscaler",
    "primary_config",
    "primary_config_name",
    "primary_deployment",
    "route_field",
    "route_weights",
    "routes",
    "services",
    "virtual_service",
]
