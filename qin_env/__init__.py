"""QIN-Gym: a multi-agent RL environment of quantum intelligence networks."""

__version__ = "0.1.0"
