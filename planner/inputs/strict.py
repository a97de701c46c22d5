"""The base of the workloads file's models: unknown fields refused, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # allow_inf_nan=False: YAML reads .inf and .nan as numbers, and either would reach the
    # arithmetic (an OverflowError, a plan "at inf tok/s per user").
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
