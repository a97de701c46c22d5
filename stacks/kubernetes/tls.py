"""A cluster pool's TLS: a CA of its own and the certificate its pods serve HTTPS with, made by
pulumi_tls in the stack (no cluster add-on such as cert-manager is assumed). Callers trust the
pool's CA (stack output `pool_ca_certificates`), as they trust an EC2 pool's private CA.

The CA signs one certificate, whose names are the Service's names inside the cluster
(`serving`, `serving.<namespace>`, `...svc`, `...svc.cluster.local`) and, where the site states
a `dns_suffix` for its internal load balancer, `<namespace>.<dns_suffix>` for callers outside.
Both private keys are Pulumi secrets: the stack's state keeps them encrypted, and the pods read
the serving key from a kubernetes.io/tls Secret (kubernetes.io, "Secrets", TLS Secrets: keys
tls.crt and tls.key). The validity figures are planner/data/kubernetes.yaml's `pool_tls`.

A `pulumi up` within `early_renewal_hours` of the certificate's end re-issues it and updates the
Secret, then the pods: their templates carry the certificate's digest (`sha256`), so the new
certificate replaces them, a replica at a time, and each starts with it. vLLM's own reload is
not relied on (stacks/kubernetes/workload.py CERTIFICATE_ANNOTATION says why)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import pulumi
import pulumi_tls as tls
import yaml

from planner import names
from planner.catalog import DATA_DIR, Figure

ALGORITHM = "ECDSA"
CURVE = "P256"
# Key usages (RFC 5280 4.2.1.3 and 4.2.1.12, as pulumi_tls names them).
CA_USES = ["cert_signing", "crl_signing"]
SERVER_USES = ["digital_signature", "key_encipherment", "server_auth"]


@dataclass(frozen=True)
class TlsFigures:
    ca_validity_hours: Figure
    certificate_validity_hours: Figure
    early_renewal_hours: Figure


@cache
def tls_figures() -> TlsFigures:
    data = yaml.safe_load((DATA_DIR / "kubernetes.yaml").read_text(encoding="utf-8"))["pool_tls"]
    return TlsFigures(**{name: Figure.model_validate(value) for name, value in data.items()})


def sha256(pem: str) -> str:
    """A certificate's digest, as its pods' templates carry it: the SHA-256 of its PEM text."""
    return hashlib.sha256(pem.encode()).hexdigest()


def dns_names(namespace: str, service: str, dns_suffix: str | None) -> list[str]:
    """The names callers use: the Service's inside the cluster, and the one outside it."""
    inside = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]
    return [*inside, *([f"{namespace}.{dns_suffix}"] if dns_suffix else [])]


@dataclass(frozen=True)
class PoolCertificate:
    ca_certificate: pulumi.Output[str]
    certificate: pulumi.Output[str]
    private_key: pulumi.Output[str]  # a secret


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    secret: pulumi.Output[str] = pulumi.Output.secret(value)
    return secret


def pool_certificate(
    name: str,
    pool: str,
    names_: list[str],
    opts: pulumi.ResourceOptions,
    kept: pulumi.ResourceOptions,
) -> PoolCertificate:
    """The pool's CA and its serving certificate for these DNS names. `kept`: the options of
    what callers trust, the CA's key and certificate (guarded as the pool's other keys: a CA
    made anew is one every caller must trust again); the serving certificate is replaced as it
    nears its end, so it takes `opts`."""
    figures = tls_figures()
    ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm=ALGORITHM, ecdsa_curve=CURVE, opts=kept)
    # The mocks (and any engine that does not apply the provider's secret outputs) would hand
    # the key on in plain text: it is marked secret wherever it is passed.
    ca_key_pem = _secret(ca_key.private_key_pem)
    ca = tls.SelfSignedCert(
        f"{name}-ca",
        private_key_pem=ca_key_pem,
        is_ca_certificate=True,
        subject={"common_name": f"{pool} CA"[-64:], "organization": names.PROJECT},
        validity_period_hours=int(figures.ca_validity_hours.value),
        allowed_uses=CA_USES,
        opts=kept,
    )
    key = tls.PrivateKey(f"{name}-serving-key", algorithm=ALGORITHM, ecdsa_curve=CURVE, opts=opts)
    key_pem = _secret(key.private_key_pem)
    request = tls.CertRequest(
        f"{name}-serving-request",
        private_key_pem=key_pem,
        dns_names=names_,
        # Names are read from the subject alternative names; the common name stays short (at
        # most 64 characters, RFC 5280 ub-common-name).
        subject={"common_name": names_[0], "organization": names.PROJECT},
        opts=opts,
    )
    certificate = tls.LocallySignedCert(
        f"{name}-serving-certificate",
        cert_request_pem=request.cert_request_pem,
        ca_cert_pem=ca.cert_pem,
        ca_private_key_pem=ca_key_pem,
        validity_period_hours=int(figures.certificate_validity_hours.value),
        early_renewal_hours=int(figures.early_renewal_hours.value),
        allowed_uses=SERVER_USES,
        opts=opts,
    )
    return PoolCertificate(ca.cert_pem, certificate.cert_pem, key_pem)
