"""What every model of the plan file shares: strict reading (_Out) and the two placements."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Placement = Literal["self_hosted", "cloud_api"]


class _Out(BaseModel):
    # read_plan validates JSON text strictly: "2" or true is no node count, NaN no cost.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
