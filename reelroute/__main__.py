"""`python -m reelroute` runs the reelroute command line."""

from reelroute.deployments.cli import app

app()
