"""Networks in settings: the webhook allow-list (REELROUTE_WEBHOOK_ALLOW_NETWORKS) parsed, and the
cloud metadata ranges that it can never include."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local: AWS, GCP, Azure metadata services
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS's IPv6 metadata service
)
"""Never allowed, whatever the allow-list says."""


def parse_networks(text: str | Sequence[str] | None) -> list[IPNetwork]:
    """`127.0.0.0/8, 10.0.0.0/8` as networks; ValueError naming a bad one, or one that
    overlaps a cloud metadata range."""
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(f"{part!r} is not a network; write e.g. 127.0.0.0/8") from None
        for metadata in METADATA_NETWORKS:
            if network.version == metadata.version and network.overlaps(metadata):
                raise ValueError(
                    f"{part} overlaps {metadata}, where clouds answer with their metadata and "
                    "credentials; it can never be allowed"
                )
        networks.append(network)
    return networks
