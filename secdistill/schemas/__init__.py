"""Contracts both the fleet and the distillation job agree on: pydantic models, one codec, the registry."""
