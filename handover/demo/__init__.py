"""``make demo``: beat-handover end to end on this machine."""
