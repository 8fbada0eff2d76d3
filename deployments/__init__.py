"""Work pools, deployments and the `reelroute` command line."""
