"""Ingest: plan what changed, decode and encode it, write it; refit the fused vectors after training."""
