"""A pool on a Kubernetes site: its namespace, policies, serving pods, TLS certificate, Service
(ClusterIP, or an internal LoadBalancer for callers outside the cluster) and disruption budget,
deployed with a Kubernetes provider for the site's kubeconfig context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from planner import names
from planner.catalog import Catalog
from planner.planfile import ClusterSite, Pool
from stacks.addressing import WorkloadCost, dns_label
from stacks.aws.identity import API_KEY_LENGTH
from stacks.boot import behind_aws_nlb
from stacks.kubernetes import network_policy, service, tls, workload
from stacks.kubernetes.labels import (
    POOL_LABEL,
    cost_annotations,
    cost_labels,
    label_value,
    workload_cost_key,
)
from stacks.kubernetes.namespace import namespace_manifest
from stacks.settings import SERVING_PORT, ClusterSettings, guarded


@dataclass(frozen=True)
class ClusterPoolArgs:
    pool: Pool
    site: ClusterSite
    cluster: ClusterSettings
    consumers: list[str]  # the callers' ranges (an ipBlock each)
    # The consumers' ranges that call from outside the cluster (through the site's internal
    # load balancer): none, and the pool's Service is ClusterIP.
    outside: list[str]
    image_tag: str
    protect: bool
    workloads: list[WorkloadCost]
    # The namespaces of the site's cluster whose pods call the pool (a namespaceSelector each).
    namespaces: list[str] = field(default_factory=list)


def _metadata(manifest: dict[str, Any]) -> Any:
    return manifest["metadata"]


class ClusterPool(pulumi.ComponentResource):
    """One pool's resources on its cluster, and what callers need to reach it."""

    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    api_key_secret: k8s.core.v1.Secret
    tls_secret: k8s.core.v1.Secret
    weights_secret: k8s.core.v1.Secret
    policies: list[k8s.networking.v1.NetworkPolicy]
    serving: pulumi.CustomResource
    service: k8s.core.v1.Service
    disruption_budget: k8s.policy.v1.PodDisruptionBudget
    # Every manifest registered, as the API server reads it (secrets' values left out).
    manifests: list[dict[str, Any]]

    def __init__(
        self,
        name: str,
        args: ClusterPoolArgs,
        catalog: Catalog,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(names.CLUSTER_POOL, name, None, opts)
        pool, site, stack = args.pool, args.site, pulumi.get_stack()
        self.served_model = pool.model
        self.site_name = site.name
        # One namespace per pool and stack: two stacks may deploy to one cluster.
        self.namespace_name = dns_label(f"{pool.name}-{stack}")
        labels = cost_labels(stack, "pool", pool.name, pool.monthly_cost_usd, pool.perimeter.value)
        annotations = cost_annotations(
            stack, "pool", pool.name, pool.monthly_cost_usd, pool.perimeter.value
        )
        for cost in args.workloads:  # each workload's share, as the AWS stack's tags say it
            annotations[workload_cost_key(cost.name)] = f"{cost.monthly_cost_usd:.2f}"
        pods = {POOL_LABEL: label_value(pool.name)}
        self.provider = k8s.Provider(
            f"{name}-cluster", context=site.context, opts=pulumi.ResourceOptions(parent=self)
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        ns = self.namespace_name
        outside_lb = site.load_balancer if args.outside else None
        # Behind an AWS NLB a new pod turns Ready only once the NLB calls it healthy (the
        # namespace's readiness-gate label), so a rollout never leaves it no healthy target.
        self.manifests = [
            namespace_manifest(ns, labels, annotations, readiness_gate=behind_aws_nlb(outside_lb))
        ]
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=_metadata(self.manifests[0]), opts=on_cluster
        )
        inside = pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[self.namespace])
        )
        api_key = random.RandomPassword(
            f"{name}-api-key",
            length=API_KEY_LENGTH,
            special=False,
            opts=guarded(args.protect, self),
        )
        self.api_key_secret = self._secret(
            f"{name}-api-key", ns, workload.SECRET_API_KEY, labels, {"key": api_key.result}, inside
        )
        self.outside_dns_name = (
            f"{ns}.{outside_lb.dns_suffix}" if outside_lb and outside_lb.dns_suffix else None
        )
        certificate = tls.pool_certificate(
            name,
            pool.name,
            tls.dns_names(ns, "serving", outside_lb.dns_suffix if outside_lb else None),
            pulumi.ResourceOptions(parent=self),
            guarded(args.protect, self),
        )
        self.ca_certificate = certificate.ca_certificate
        self.tls_secret = self._secret(
            f"{name}-serving-tls",
            ns,
            workload.SECRET_TLS,
            labels,
            {"tls.crt": certificate.certificate, "tls.key": certificate.private_key},
            inside,
            kind="kubernetes.io/tls",
        )
        cluster = args.cluster
        if cluster.access_key_id is None or cluster.secret_access_key is None:
            # stacks/settings.py read_clusters refuses a site without both.
            raise ValueError(f"site {site.name}: the weights' store credentials are missing")
        self.weights_secret = self._secret(
            f"{name}-weights-reader",
            ns,
            workload.SECRET_WEIGHTS,
            labels,
            {
                "AWS_ACCESS_KEY_ID": cluster.access_key_id,
                "AWS_SECRET_ACCESS_KEY": cluster.secret_access_key,
                # The store's CA, where the site gives one, beside the keys the copy uses.
                **(
                    {workload.WEIGHTS_CA_KEY: pulumi.Output.from_input(cluster.weights_ca)}
                    if cluster.weights_ca is not None
                    else {}
                ),
            },
            inside,
        )
        deny = network_policy.default_deny(ns, labels)
        allow = network_policy.pool_allow(
            ns,
            labels,
            pods,
            SERVING_PORT,
            args.consumers,
            cluster.weights_cidr,
            namespaces=args.namespaces,
            health_checks=list(outside_lb.health_check_cidrs) if outside_lb else [],
        )
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-policy-{manifest['metadata']['name']}",
                metadata=_metadata(manifest),
                spec=manifest["spec"],
                opts=inside,
            )
            for manifest in (deny, allow)
        ]
        serving = workload.serving_manifest(
            catalog,
            pool,
            site,
            cluster,
            args.image_tag,
            ns,
            pods,
            labels,
            annotations,
            certificate.certificate.apply(tls.sha256),
            outside_lb,
        )
        # The pods start only once the policies select them: never a moment unsealed. `pulumi
        # up` waits for them as long as their weights take (workload.await_timeouts), not the
        # provider's 10 minutes, which a GPU pod's first start outlasts.
        self.await_timeouts = workload.await_timeouts(catalog, pool, outside_lb)
        waits = pulumi.CustomTimeouts(
            create=f"{self.await_timeouts.create_s // 60}m",
            update=f"{self.await_timeouts.update_s // 60}m",
        )
        after_policies = pulumi.ResourceOptions.merge(
            inside,
            pulumi.ResourceOptions(
                depends_on=[
                    *self.policies,
                    self.api_key_secret,
                    self.tls_secret,
                    self.weights_secret,
                ],
                custom_timeouts=waits,
            ),
        )
        if serving["kind"] == "Deployment":
            self.serving = k8s.apps.v1.Deployment(
                f"{name}-serving",
                metadata=_metadata(serving),
                spec=serving["spec"],
                opts=after_policies,
            )
        else:
            self.serving = k8s.apiextensions.CustomResource(
                f"{name}-serving",
                api_version=serving["apiVersion"],
                kind=serving["kind"],
                metadata=_metadata(serving),
                spec=serving["spec"],
                opts=after_policies,
            )
        svc = service.service_manifest(
            ns,
            labels,
            pods,
            SERVING_PORT,
            None
            if outside_lb is None
            else service.Outside(
                dict(outside_lb.annotations), outside_lb.load_balancer_class, args.outside
            ),
        )
        # A Service's loadBalancerClass cannot change once set (kubernetes.io, API reference,
        # ServiceSpec.loadBalancerClass: "This field can only be set when creating or updating a
        # Service to type 'LoadBalancer'. Once set, it can not be changed."): a site's class
        # changed replaces the Service, the old one deleted first since its name is fixed
        # (Pulumi ResourceOptions replace_on_changes, delete_before_replace).
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=_metadata(svc),
            spec=svc["spec"],
            opts=pulumi.ResourceOptions.merge(
                inside,
                pulumi.ResourceOptions(
                    replace_on_changes=["spec.loadBalancerClass"],
                    delete_before_replace=True,
                    # pulumi-kubernetes waits for a LoadBalancer Service's address and until
                    # no endpoint is not ready (provider pkg/await/service.go): the pods' way to
                    # serving, as the Deployment's or LWS's wait.
                    custom_timeouts=waits,
                ),
            ),
        )
        budget = service.disruption_budget(ns, labels, pods)
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=_metadata(budget),
            spec=budget["spec"],
            opts=inside,
        )
        self.manifests += [deny, allow, serving, svc, budget]
        self.dns_name = f"serving.{ns}.svc.cluster.local"
        self.endpoint = f"https://{self.dns_name}:{SERVING_PORT}/v1"
        self.outside_endpoint = (
            f"https://{self.outside_dns_name}:{SERVING_PORT}/v1" if self.outside_dns_name else None
        )
        self.service_type = svc["spec"]["type"]
        # Where the organization points <namespace>.<dns_suffix> (the stack makes no record):
        # the address its load-balancer implementation gave the Service, which pulumi-kubernetes
        # waits for before it calls a LoadBalancer Service ready (its Service docs, 4.34.2).
        self.load_balancer_address: pulumi.Output[str | None] | None = (
            self.service.status.apply(ingress_address)
            if self.service_type == "LoadBalancer"
            else None
        )
        self.monthly_cost_usd = pulumi.Output.from_input(pool.monthly_cost_usd)
        self.register_outputs(self.connection())

    def _secret(
        self,
        resource: str,
        namespace: str,
        name: str,
        labels: dict[str, str],
        data: dict[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions,
        kind: str = "Opaque",
    ) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            resource,
            metadata={"name": name, "namespace": namespace, "labels": cast(Any, labels)},
            type=kind,
            string_data=cast(
                Any, {key: pulumi.Output.secret(value) for key, value in data.items()}
            ),
            opts=opts,
        )

    def connection(self) -> dict[str, object]:
        return {
            "target": "kubernetes",
            "site": self.site_name,
            "endpoint": self.endpoint,
            "dns_name": self.dns_name,
            # Callers outside the cluster: the site's internal load balancer, at this name
            # where the site states a dns_suffix (None: inside the cluster only, or no name).
            "service_type": self.service_type,
            "outside_endpoint": self.outside_endpoint,
            "ca_certificate": self.ca_certificate,
            "namespace": self.namespace_name,
            "model": self.served_model,
            "api_key_secret": f"{self.namespace_name}/{workload.SECRET_API_KEY}",
            "leaderworkerset_release": workload.LWS_RELEASE,
        }


def ingress_address(status: Any) -> str | None:
    """The first address a LoadBalancer Service's status gives (hostname, as an AWS NLB's, else
    its IP), or None before the implementation gave one (and under mocks). The status is the
    SDK's output type (snake_case attributes) or, as a mock hands it back, the API's dict."""

    def part(value: Any, name: str, api_name: str) -> Any:
        # The SDK's output types are dicts too, keyed in snake_case: only a plain dict is the
        # API's spelling.
        if type(value) is dict:
            return value.get(api_name)
        return getattr(value, name, None)

    balancer = part(status, "load_balancer", "loadBalancer")
    for ingress in part(balancer, "ingress", "ingress") or []:
        found = part(ingress, "hostname", "hostname") or part(ingress, "ip", "ip")
        if found:
            return str(found)
    return None
