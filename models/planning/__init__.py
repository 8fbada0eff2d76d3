"""Deciding who makes a video and when it will be ready: service-time estimates, ETA lanes
replayed on each provider's slots, the routing snapshot and policies, and the replanning that
moves waiting items. Pure functions of a snapshot where possible, so `reelroute replay` runs the
same code on a simulated clock."""
