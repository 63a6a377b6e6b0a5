"""Flagger-style progressive delivery on Istio, run by `pulumi up`."""
