"""handover package."""
