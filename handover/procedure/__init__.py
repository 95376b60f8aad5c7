"""The handover procedure as a library (no click): preflight, announce, pin, confirm, roll back."""
