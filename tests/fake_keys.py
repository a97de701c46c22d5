"""Credentials of each provider's real shape, made at test time from a seeded generator: no
key-shaped string is committed (the repository's own secret scanning stays clean), and each
literal prefix is split so this file matches no scanner's rule either."""

from __future__ import annotations

import random
import string

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
UPPER = string.ascii_uppercase + string.digits
MARKER = "T3Blbk" + "FJ"  # base64 of "OpenAI", in every OpenAI key


def fake_key(kind: str, seed: int = 0) -> str:
    rng = random.Random(f"{kind}/{seed}")

    def pick(alphabet: str, length: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(length))

    shapes = {
        "openai-project": lambda: "sk-" + "proj-" + pick(URLSAFE, 74) + MARKER + pick(URLSAFE, 74),
        "openai-service-account": lambda: "sk-" + "svcacct-" + pick(URLSAFE, 58) + MARKER
        + pick(URLSAFE, 58),
        "openai-legacy": lambda: "sk-" + pick(ALNUM, 20) + MARKER + pick(ALNUM, 20),
        "anthropic": lambda: "sk-" + "ant-api03-" + pick(URLSAFE, 93) + "AA",
        "deepseek": lambda: "sk-" + pick(HEX, 32),
        "google": lambda: "AI" + "za" + pick(URLSAFE, 35),
        "aws": lambda: "AK" + "IA" + pick(UPPER, 16),
        "aws-temporary": lambda: "AS" + "IA" + pick(UPPER, 16),
        "github": lambda: "gh" + "p_" + pick(ALNUM, 36),
        "github-fine-grained": lambda: "github_" + "pat_" + pick(ALNUM + "_", 82),
        "private-key": lambda: "-----BEGIN " + "RSA PRIVATE" + " KEY-----\n" + pick(ALNUM, 64),
    }  # fmt: skip
    return shapes[kind]()


KINDS = [
    "openai-project", "openai-service-account", "openai-legacy", "anthropic", "deepseek",
    "google", "aws", "aws-temporary", "github", "github-fine-grained", "private-key",
]  # fmt: skip
