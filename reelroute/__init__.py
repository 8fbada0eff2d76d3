"""reelroute: photos to short videos, routed per item to local Wan GPUs or Runway's cloud.

The repository keeps the design card's top-level folders (`models/`, `providers/`, `flows/`,
`deployments/`, `ui/`); this package links them under one name, so they install as
`reelroute.models`, `reelroute.flows`, … and nothing generic lands at the top of site-packages.
"""

__version__ = "0.2.0"
