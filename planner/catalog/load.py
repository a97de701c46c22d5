"""Reading the catalog: the data files of a directory (planner/data, DATA_DIR, unless told),
each checked, and the references between them (a model's precision, an API model's provider,
its context window), a broken one reported like a bad workloads file."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from genai_prices import __version__ as genai_prices_version
from genai_prices.data_snapshot import get_snapshot
from pydantic import ValidationError

from planner.catalog.providers import Provider
from planner.catalog.types import ApiModel, Catalog
from planner.errors import PlannerError, Problem

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def _read(name: str, directory: Path) -> Any:
    path = directory / name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PlannerError.single(str(path), "", f"cannot read catalog file: {exc}") from None


def _api_context_windows(api_models: Any) -> dict[str, Any]:
    """Each API model's context window: its catalog entry's, else genai-prices' model data."""
    snapshot = get_snapshot()
    windows: dict[str, Any] = {}
    for api_id, api in (api_models or {}).items():
        if not isinstance(api, dict):
            continue
        if api.get("context_window") is not None:
            windows[api_id] = api["context_window"]
            continue
        ref = api.get("price_ref") or {}
        try:
            _, info = snapshot.find_provider_model(
                str(ref.get("model")), None, str(ref.get("provider")), None
            )
        except LookupError:
            continue
        if info.context_window is not None:
            windows[api_id] = {
                "value": info.context_window,
                "source": f"genai-prices {genai_prices_version} model data "
                f"({ref.get('provider')}/{info.id}: context_window)",
                "date": f"genai-prices {genai_prices_version}",
            }
    return windows


def load_catalog(directory: Path = DATA_DIR) -> Catalog:
    """Read and check every catalog file; a broken one is reported like a bad workloads file."""
    models = _read("models.yaml", directory)["models"]
    api_models = _read("api_models.yaml", directory)["api_models"]
    data_classes = _read("data_classes.yaml", directory)
    windows = {
        model_id: model.get("context_window")
        for model_id, model in (models or {}).items()
        if isinstance(model, dict) and model.get("context_window") is not None
    }
    windows.update(_api_context_windows(api_models))
    raw = {
        "instances": _read("instances.yaml", directory)["instances"],
        "pricing": _read("pricing.yaml", directory),
        "precisions": _read("precisions.yaml", directory)["precisions"],
        "models": models,
        "providers": _read("providers.yaml", directory)["providers"],
        "api_models": api_models,
        "price_overrides": _read("api_price_overrides.yaml", directory)["overrides"],
        "tasks": _read("tasks.yaml", directory)["tasks"],
        "data_classes": data_classes["data_classes"],
        "private_consumers": data_classes["private_consumers"],
        "defaults": _read("assumptions.yaml", directory),
        "operations": _read("operations.yaml", directory),
        "regions": _read("regions.yaml", directory),
        "serving": _read("vllm.yaml", directory),
        "optimizer": _read("optimizer.yaml", directory),
        "cluster_assumptions": _read("kubernetes.yaml", directory)["cluster_assumptions"],
        "node_resources": _read("kubernetes.yaml", directory)["node_resources"],
        "load_balancer_assumptions": _read("kubernetes.yaml", directory)[
            "load_balancer_assumptions"
        ],
        "health_check_assumptions": _read("kubernetes.yaml", directory)["health_check_assumptions"],
        "context_windows": windows,
        "aws_prices": _read("aws_prices.yaml", directory)["resources"],
        "directory": directory,
    }
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(part) for part in error["loc"]), error["msg"])
            for error in exc.errors()
        ]
        raise PlannerError(str(directory), problems) from None
    problems = []
    for model_id, model in catalog.models.items():
        if model.default_precision not in catalog.precisions:
            problems.append(Problem(f"models.{model_id}.default_precision", "unknown precision"))
        elif model.default_precision not in model.checkpoints:
            # A pool serves the model at its own precision: from that checkpoint.
            problems.append(
                Problem(f"models.{model_id}.checkpoints", "no checkpoint at its default precision")
            )
        for precision in model.checkpoints:
            if precision not in catalog.precisions:
                problems.append(
                    Problem(f"models.{model_id}.checkpoints.{precision}", "unknown precision")
                )
        if model_id not in catalog.serving.models:
            problems.append(
                Problem(f"vllm.yaml models.{model_id}", "the flags to serve it are not given")
            )
    for model_id in catalog.serving.models:
        if model_id not in catalog.models:
            problems.append(Problem(f"vllm.yaml models.{model_id}", "not an open model"))
    for api_id, api in catalog.api_models.items():
        if api_id in catalog.models:
            # A workload pins a model by id: one id must name one thing.
            problems.append(Problem(f"api_models.{api_id}", "id also names an open model"))
        if api.provider not in catalog.providers:
            problems.append(Problem(f"api_models.{api_id}.provider", "unknown provider"))
        else:
            problems += _provider_model_problems(api_id, api, catalog.providers[api.provider])
        if api.open_model is not None and api.open_model not in catalog.models:
            problems.append(Problem(f"api_models.{api_id}.open_model", "unknown open model"))
        if api_id not in catalog.context_windows:
            # A request longer than a model's window is ruled out: every model needs one.
            problems.append(
                Problem(
                    f"api_models.{api_id}.context_window",
                    "genai-prices has no context window for this model: give one here",
                )
            )
    # The stack builds one PrivateLink network, from the plan's one `private_link` range
    # (planner/inputs/networks.py, stacks/program.py): two providers reached that way would get
    # two VPCs of the same range, and two private-DNS endpoints of one service in a consumer VPC
    # (which AWS refuses).
    linked = sorted(p for p, provider in catalog.providers.items() if provider.private_link)
    if len(linked) > 1:
        problems.append(
            Problem(
                f"providers.{linked[1]}.private_link",
                f"{' and '.join(linked)} are both reached through PrivateLink: the stack builds "
                "one PrivateLink network, so at most one provider may be",
            )
        )
    for region in catalog.regions.priced.regions:
        if region not in catalog.regions.aws.regions:
            problems.append(Problem("regions.priced", f"{region!r} is not in regions.aws"))
    if problems:
        raise PlannerError(str(directory), problems)
    return catalog


def _provider_model_problems(api_id: str, api: ApiModel, provider: Provider) -> list[Problem]:
    """What the stack needs of a model to name it: an `iam_role` provider's model by its
    provider_model_id (its ARNs), an inference profile by an ARN form of the provider's and an
    id that is the model's with a geography in front (how the verifier reads a profile ARN)."""
    at = f"api_models.{api_id}"
    problems = []
    if provider.invoke is not None and api.provider_model_id is None:
        problems.append(
            Problem(
                f"{at}.provider_model_id",
                f"{api.provider} is reached with an IAM role: the model's ARN needs the "
                "provider's id of it",
            )
        )
    profile = api.inference_profile
    if profile is None:
        return problems
    if provider.invoke is None or provider.invoke.profile_arn is None:
        problems.append(
            Problem(
                f"{at}.inference_profile",
                f"provider {api.provider} has no inference profile ARN form (invoke.profile_arn)",
            )
        )
    elif profile.scope == "global" and provider.invoke.any_region_model_arn is None:
        problems.append(
            Problem(
                f"{at}.inference_profile.scope",
                f"a global profile routes to any region: provider {api.provider} needs "
                "invoke.any_region_model_arn",
            )
        )
    if api.provider_model_id is not None and not profile.id.endswith(f".{api.provider_model_id}"):
        problems.append(
            Problem(
                f"{at}.inference_profile.id",
                f"{profile.id!r} is not the model's id {api.provider_model_id!r} with a "
                "geography in front (e.g. us.<model id>)",
            )
        )
    return problems


@cache
def default_catalog() -> Catalog:
    return load_catalog()
