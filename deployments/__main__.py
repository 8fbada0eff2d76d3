"""`python -m deployments` runs the reelroute command line."""

from deployments.cli import app

app()
