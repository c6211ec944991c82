"""Adapters of the functional core to PettingZoo and Gymnasium; no dynamics live here."""
