"""Providers turn one photo and prompt into one video (Runway's cloud, local Wan)."""
