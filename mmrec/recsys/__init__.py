"""Recommendation: interaction data, profiles, baselines, the hybrid, evaluation, retrieval, recommend, explain."""
