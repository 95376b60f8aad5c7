"""``beat_lock_critical``, ``beat_lock_catch_up`` and ``beat_lock_repeat_safe`` resolved against
the scheduler's entries: the one answer to "is this entry critical, what is its catch-up policy,
may it be sent again when in doubt", asked by beat, the handover preflight and the quiet-window
report alike.

Each key is an entry name or a shell glob (``letters-*``, case-sensitive). A key that matches no
entry is an error that lists the close and known names, so a typo never silently turns a
protection off. An entry's policy is the one its exact name is given, else the one of the globs
that match it (two globs giving it different policies is an error), else ``none`` if it is
critical, else ``latest``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from fnmatch import fnmatchcase

from beat_handover.beat_lock.errors import ConfigError

MAX_NAMES_SHOWN = 40


@dataclass(frozen=True)
class EntryNames:
    """The critical entries and each entry's catch-up policy, by entry name."""

    critical: frozenset[str] = frozenset()
    policies: Mapping[str, str] = field(default_factory=dict)  # only entries given one
    repeat_safe: frozenset[str] = frozenset()  # a run sent twice does no harm

    def policy(self, name: str) -> str:
        """The catch-up policy of entry `name`."""
        if name in self.policies:
            return self.policies[name]
        return "none" if name in self.critical else "latest"


def resolve_entry_names(
    entries: Iterable[str],
    critical: Sequence[str],
    catch_up: Mapping[str, str],
    repeat_safe: Sequence[str] = (),
) -> EntryNames:
    """Resolve the critical and repeat-safe names or globs and the catch-up keys against
    `entries`."""
    known = sorted(entries)
    chosen: set[str] = set()
    for pattern in critical:
        chosen.update(matching(known, pattern, setting="beat_lock_critical"))
    safe: set[str] = set()
    for pattern in repeat_safe:
        safe.update(matching(known, pattern, setting="beat_lock_repeat_safe"))
    policies: dict[str, str] = {}
    by_glob: dict[str, tuple[str, str]] = {}  # entry -> (glob, policy)
    for key, policy in catch_up.items():
        for name in matching(known, key, setting="beat_lock_catch_up"):
            if key == name:
                policies[name] = policy
                continue
            earlier = by_glob.get(name)
            if earlier is not None and earlier[1] != policy:
                raise ConfigError(
                    f"beat_lock_catch_up gives entry {name!r} two policies: {earlier[1]} by "
                    f"{earlier[0]!r} and {policy} by {key!r}; name the entry itself to choose"
                )
            by_glob[name] = (key, policy)
    for name, (_, policy) in by_glob.items():
        policies.setdefault(name, policy)
    return EntryNames(frozenset(chosen), policies, frozenset(safe))


def matching(known: Sequence[str], pattern: str, *, setting: str) -> list[str]:
    """The names in `known` that `pattern` (a name or glob) matches; ConfigError if none."""
    matched = [name for name in known if fnmatchcase(name, pattern)]
    if not matched:
        raise ConfigError(
            f"{setting}: {pattern!r} matches no entry of the schedule; "
            f"{describe_names(known, near=pattern)}"
        )
    return matched


def describe_names(known: Collection[str], *, near: str) -> str:
    """'known entries: ...' for an error message: close matches first, at most a screenful."""
    known = sorted(known)
    if not known:
        return "known entries: none (the schedule is empty)"
    close = get_close_matches(near, known, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    if len(known) <= MAX_NAMES_SHOWN:
        return f"{hint}known entries: {', '.join(known)}"
    return (
        f"{hint}known entries ({len(known)}, the first {MAX_NAMES_SHOWN} shown): "
        f"{', '.join(known[:MAX_NAMES_SHOWN])}, ..."
    )
