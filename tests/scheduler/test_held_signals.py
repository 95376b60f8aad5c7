"""SIGTERM during a claim-and-publish waits until the run is out, then reaches beat's handler."""

import os
import signal

from beat_handover.scheduler.held_signals import HeldSignals


def test_a_signal_inside_the_block_is_delivered_when_it_ends_and_not_before():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    held = HeldSignals((signal.SIGTERM,))
    try:
        held.install()
        with held.held():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM, signal.SIGTERM]
    finally:
        held.uninstall()
        signal.signal(signal.SIGTERM, previous)


def test_uninstall_puts_the_original_handler_back():
    def original(signum, frame):
        return None

    previous = signal.signal(signal.SIGINT, original)
    held = HeldSignals((signal.SIGINT,))
    try:
        held.install()
        assert signal.getsignal(signal.SIGINT) is not original
        held.uninstall()
        assert signal.getsignal(signal.SIGINT) is original
    finally:
        signal.signal(signal.SIGINT, previous)
