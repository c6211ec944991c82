"""Pinned leaderboard entries: trained checkpoints per agent and scenario, and the script that makes them."""
