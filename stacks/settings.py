"""Stack settings: every `pulumi config` value the program reads, read in one place.

Components never read config; the program (stacks/program.py run) reads it here and passes plain
values (and the API keys as secret Outputs) down. `guarded` turns the `protect` setting into the
options of what must survive a mistaken destroy.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi

from planner.catalog import default_catalog
from planner.catalog.types import PrivateConsumers
from stacks.kubernetes.network_policy import HTTPS_PORT

SERVING_PORT = 8000
# An IAM user or role ARN, as the bucket policy's aws:PrincipalArn condition compares it: for a
# role, the role's ARN, never an assumed-role session's ("AWS global condition context keys",
# aws:PrincipalArn, IAM User Guide).
IAM_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(user|role)/[\w+=,.@/-]+")


@dataclass(frozen=True)
class ClusterSettings:
    """What the stack needs of a Kubernetes site beyond the plan (stack config `clusters`, one
    mapping per site name): where the organization's images and weights are. Never a public
    registry or hub: the pods pull from `registry` and copy the weights from the site's object
    store."""

    # The organization's registry the pinned vLLM image is mirrored into (host[/path]); the
    # image is <registry>/<vllm.yaml release image's repository>:<serving_image_tag>.
    registry: str
    # The S3 client image the init step copies the weights with, in that registry, pinned by
    # tag or digest (e.g. <registry>/amazon/aws-cli:<tag>); its script needs `aws`, a POSIX
    # `sh` and `sleep` (stacks/kubernetes/workload.py copy_script).
    weights_copy_image: str
    # The object store's S3 endpoint (https://...), and the range its addresses are in: the
    # only place outside the pool its pods may reach (stacks/kubernetes/network_policy.py).
    weights_endpoint: str
    weights_cidr: str
    # Read-only credentials of the weights' bucket (secret config
    # <site>_weights_access_key_id and <site>_weights_secret_access_key).
    access_key_id: pulumi.Output[str] | None = None
    secret_access_key: pulumi.Output[str] | None = None
    # The CA bundle (PEM) the store's certificate chains to, where no public CA signed it (an
    # endpoint in the organization's own domain, e.g. https://models.internal): the copy's S3
    # client trusts it (AWS_CA_BUNDLE). None: the client's own public CAs.
    weights_ca: str | None = None


CLUSTER_KEYS = ("registry", "weights_copy_image", "weights_endpoint", "weights_cidr")


@dataclass(frozen=True)
class StackSettings:
    stack: str
    # KMS keys, weights buckets and secrets are protected unless a dev stack turns it off.
    protect: bool = True
    budget_email: str | None = None
    # The vLLM release the serving command is built for (planner/data/vllm.yaml): another tag
    # may lack a flag the command uses.
    serving_image_tag: str = default_catalog().serving.release.tag
    weights_uploader_arn: str | None = None
    api_keys: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    # Activate the stack tag as a cost allocation tag (stacks/aws/budget.py says when it can be).
    activate_cost_tag: bool = False
    # The Kubernetes sites' settings, by site name.
    clusters: dict[str, ClusterSettings] = field(default_factory=dict)


# Stack config keys that moved to the workloads file's `network:` mapping, and their value
# there: pool_cidr_base N gave the first pool 10.N.0.0/16.
MOVED: dict[str, Callable[[str], str]] = {
    "pool_cidr_base": lambda value: (
        f"pools: 10.{value}.0.0/16" if value.isdigit() and int(value) < 256 else "pools: CIDR"
    ),
    "api_vpc_cidr": lambda value: f"apis: {value}",
}


_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*\n(.*?)\n-----END CERTIFICATE-----", re.DOTALL
)


def ca_bundle_problem(value: object) -> str | None:
    """Why this is no PEM bundle of certificates (one or more, nothing else), or None."""
    if not isinstance(value, str) or not value.strip():
        return "not a PEM bundle of CA certificates (-----BEGIN CERTIFICATE----- ...)"
    found = _PEM_CERTIFICATE.findall(value)
    rest = _PEM_CERTIFICATE.sub("", value).strip()
    if not found or rest:
        return (
            "not a PEM bundle of CA certificates only (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----, nothing else: never a private key)"
        )
    for body in found:
        try:
            base64.b64decode("".join(body.split()), validate=True)
        except (ValueError, binascii.Error):
            return "a certificate in it is not valid base64 DER"
    return None


# Names no public CA may certify, so a store under one has a certificate of the organization's
# own CA, which the copy must be given (weights_ca). The CA/Browser Forum's Baseline
# Requirements forbid publicly-trusted certificates for an Internal Name (one not under a TLD of
# the public DNS root, such as a single label) or a Reserved IP Address since 1 November 2015
# (cabforum.org, "Guidance on Internal Names"; Baseline Requirements 7.1.4.2.1 at the time).
# Names that are never public: .internal (ICANN board
# resolution 2024.07.29.06, reserved for private use), .local (RFC 6762), .home.arpa (RFC 8375),
# .test, .example, .invalid and .localhost (RFC 6761), .corp, .home and .mail (ICANN board
# resolution 2018.02.04.12: never delegated), and suffixes in common private use that the root
# zone has no TLD of: .svc (Kubernetes Services), .lan, .localdomain, .intranet, .private. Not
# every internal name: one under another TLD the root zone lacks passes unchecked.
PRIVATE_USE_DOMAINS = (
    "internal", "local", "home.arpa", "test", "example", "invalid", "localhost",
    "corp", "home", "mail", "svc", "lan", "localdomain", "intranet", "private",
)  # fmt: skip


def needs_own_ca(host: str) -> bool:
    """Whether no public CA may certify this endpoint host: a non-global address, a single
    label, or a name under PRIVATE_USE_DOMAINS."""
    name = host.rstrip(".").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return "." not in name or any(
            name == domain or name.endswith("." + domain) for domain in PRIVATE_USE_DOMAINS
        )
    return not address.is_global


def read_clusters(
    config: pulumi.Config, sites: list[str], private: PrivateConsumers | None = None
) -> dict[str, ClusterSettings]:
    """The `clusters` mapping of the stack config for the plan's Kubernetes sites, each with its
    four keys (a registry and an endpoint the pods reach, never a public one): the store's
    range inside the private ranges (`private`: the catalog's), its endpoint HTTPS on the port
    the pool's policy opens (stacks/kubernetes/network_policy.py HTTPS_PORT)."""
    given = config.get_object("clusters") or {}
    found = {}
    for site in sites:
        entry = given.get(site) if isinstance(given, dict) else None
        missing = [
            key
            for key in CLUSTER_KEYS
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str) or not entry[key]
        ]
        if missing:
            raise pulumi.RunError(
                f"stack config clusters.{site}: {', '.join(missing)} missing: the Kubernetes site "
                f"{site} needs the organization's registry, the S3 client image in it, the "
                "weights' object store endpoint and its address range (README, Kubernetes sites)"
            )
        assert isinstance(entry, dict)
        registry = entry["registry"].rstrip("/")
        if not entry["weights_copy_image"].startswith(registry + "/"):
            raise pulumi.RunError(
                f"stack config clusters.{site}.weights_copy_image: "
                f"{entry['weights_copy_image']!r} is not in the registry {registry!r}: the pods "
                "pull only from the organization's registry"
            )
        problem = (private or default_catalog().private_consumers).range_problem(
            entry["weights_cidr"]
        )
        if problem is not None:
            raise pulumi.RunError(f"stack config clusters.{site}.weights_cidr: {problem}")
        endpoint = urlsplit(entry["weights_endpoint"])
        try:
            port = endpoint.port
        except ValueError:
            port = -1
        if endpoint.scheme != "https" or not endpoint.hostname or port not in (None, HTTPS_PORT):
            raise pulumi.RunError(
                f"stack config clusters.{site}.weights_endpoint: {entry['weights_endpoint']!r} "
                f"is not an https:// URL on port {HTTPS_PORT}: the pool's NetworkPolicy lets its "
                f"pods reach the store on TCP {HTTPS_PORT} only"
            )
        weights_ca = entry.get("weights_ca")
        if weights_ca is not None:
            problem = ca_bundle_problem(weights_ca)
            if problem is not None:
                raise pulumi.RunError(f"stack config clusters.{site}.weights_ca: {problem}")
        elif needs_own_ca(endpoint.hostname):
            raise pulumi.RunError(
                f"stack config clusters.{site}.weights_ca missing: no public CA certifies "
                f"{endpoint.hostname} (a private-use name or address), so the copy's S3 client "
                "would refuse the store's certificate and the pods never start; give the PEM "
                "bundle of the CA that signed it"
            )
        # The init step's copy signs its requests with these; nothing else in the pod can (the
        # policy leaves no way to instance metadata, no service account token is mounted), and
        # with one of them only, the pods would name a Secret the stack never makes.
        keys = {
            key: config.get_secret(f"{site}_{key}")
            for key in ("weights_access_key_id", "weights_secret_access_key")
        }
        absent = [f"{site}_{key}" for key, value in keys.items() if value is None]
        if absent:
            raise pulumi.RunError(
                f"stack config secret {' and '.join(absent)} missing: the Kubernetes site "
                f"{site}'s pods copy the weights with read-only credentials for its store "
                f"(pulumi config set --secret {absent[0]} ...; README, Kubernetes sites)"
            )
        found[site] = ClusterSettings(
            registry=registry,
            weights_copy_image=entry["weights_copy_image"],
            weights_endpoint=entry["weights_endpoint"],
            weights_cidr=entry["weights_cidr"],
            access_key_id=keys["weights_access_key_id"],
            secret_access_key=keys["weights_secret_access_key"],
            weights_ca=weights_ca,
        )
    return found


def read_settings(
    config: pulumi.Config, providers_with_keys: list[str], sites: list[str] | None = None
) -> StackSettings:
    """Read the stack's config; API keys only as secrets (`pulumi config set --secret`)."""
    api_keys = {}
    for provider in providers_with_keys:
        key = config.get_secret(f"{provider}_api_key")
        if key is not None:
            api_keys[provider] = key
    uploader = config.get("weights_uploader_arn")
    if uploader is not None and not IAM_PRINCIPAL_ARN.fullmatch(uploader):
        # A session ARN (sts::...:assumed-role/...) never equals aws:PrincipalArn: nobody could
        # upload the weights, and every node would wait for them.
        raise pulumi.RunError(
            f"stack config weights_uploader_arn: {uploader!r} is no IAM user or role ARN "
            "(arn:aws:iam::<account>:user/<name> or :role/<name>; for an assumed role, the "
            "role's ARN, not the session's): run `pulumi config set weights_uploader_arn ARN`, "
            "or `pulumi config rm weights_uploader_arn` to let the deploying principal upload"
        )
    for name in sorted(MOVED):
        value = config.get(name)
        if value is not None:
            # The planner allocates the ranges now, clear of the consumers' (the plan records
            # them): a key the program ignored would deploy ranges the user did not mean.
            raise pulumi.RunError(
                f"stack config {name} moved to the workloads file: run `pulumi config rm {name}`, "
                f"write `network: {{{MOVED[name](value)}}}` in the workloads file and run "
                "`planner plan` again (the plan records every network's range)"
            )
    pinned = StackSettings.serving_image_tag
    image_tag = config.get("serving_image_tag") or pinned
    if image_tag != pinned:
        # Allowed (a patch release, a rebuilt image), but nothing here checked its flags.
        pulumi.log.warn(
            f"serving_image_tag {image_tag} is not the pinned vLLM release {pinned} "
            "(planner/data/vllm.yaml): the serving command's flags are checked against "
            f"{pinned} only"
        )
    return StackSettings(
        stack=pulumi.get_stack(),
        protect=config.get_bool("protect") is not False,
        budget_email=config.get("budget_email"),
        serving_image_tag=image_tag,
        weights_uploader_arn=uploader,
        api_keys=api_keys,
        activate_cost_tag=config.get_bool("activate_cost_tag") is True,
        clusters=read_clusters(config, sites or []),
    )


def guarded(protect: bool, parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for what must survive a mistaken `pulumi destroy`: keys, weights, secrets."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect)
