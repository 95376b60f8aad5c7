"""``python -m beat_handover.handover.demo`` (``make demo``)."""

from beat_handover.handover.demo.story import main

main()
