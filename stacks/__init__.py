"""Pulumi components that deploy a plan: one module per component."""
