"""Prefect flows: generate_video, dispatch and reconcile."""
