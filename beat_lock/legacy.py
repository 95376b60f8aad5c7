"""The layout before claim items, read and converted: claims kept on the lease record itself.

Before claim items, each entry's last claim was four fields of the lease record (``slot:ENTRY``,
``runs:ENTRY``, ``claim:ENTRY`` and ``by:ENTRY`` = ``TOKEN/ENVIRONMENT``), so every renewal, poll
and claim read or wrote the whole schedule. A leader of this version converts a lock when it
fences it at the start of its tenure: it copies each legacy claim into the entry's claim item
(unless the item holds a later slot), and then, in writes conditional on still holding the lease,
sets the guard field and removes the legacy fields (the guard in the first write). Until then a
record with legacy fields is read as it is: :func:`legacy_claims` merges them into what
``last_claims`` and a fence report.

Why the conversion is safe: a legacy claim is one conditional write on the lease record that
needs the lease's current token, so once a leader of this version holds the lease the legacy
fields cannot change. An older leader that takes the lease back before the guard is written
claims in the legacy fields only, and the next conversion merges them again (the later slot
wins), so no claim is lost.

Why an older version must never lead a converted lock: it reads every entry's position from the
lease record only, so it would send again the slots claimed in claim items. It cannot be told to
stop, but it can be made to refuse: it parses every ``by:ENTRY`` field as ``TOKEN/ENVIRONMENT``
and raises CorruptRecord, which is terminal (its beat exits), on anything else, whenever it reads
the record: a standby's poll, a renewal or claim refused, ``handover status``. The guard is such a
field, and its value tells the operator what to do. So an older beat exits at its first read of a
converted lock instead of acting on stale claims, and during an upgrade only the environments
already upgraded send (``docs/design.md``, "Upgrading from claims on the lease record").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from beat_handover.beat_lock.layout import LEASE_ADVICE, FieldReader, slot_from_millis
from beat_handover.beat_lock.record import EntryClaim

GUARD_FIELD = "by:~claims-moved"
GUARD_VALUE = (
    "claims moved to per-entry claim items by a newer beat-handover; this older version would "
    "act on stale claims, so it refuses: upgrade beat-handover here (do not edit this field)"
)
PREFIXES = ("slot:", "runs:", "claim:", "by:")


def legacy_fields(fields: Iterable[str]) -> list[str]:
    """The names of legacy claim fields among a lease record's ``fields`` (not the guard), the
    fields of one entry next to each other, so removing them in batches never leaves an entry
    half removed."""
    found = [f for f in fields if f.startswith(PREFIXES) and f != GUARD_FIELD]
    return sorted(found, key=lambda f: (f.split(":", 1)[1], f))


def legacy_claims(name: str, fields: Mapping[str, str]) -> dict[str, EntryClaim]:
    """The claims kept on lock ``name``'s lease record in the legacy layout; CorruptRecord names
    a field of a wrong shape."""
    reader = FieldReader(f"lease record of lock {name!r}", fields, LEASE_ADVICE)
    entries = {field.split(":", 1)[1] for field in legacy_fields(fields)}
    claims = {}
    for entry in sorted(entries):
        by_field = f"by:{entry}"
        by = reader.text(by_field)
        token, _, environment = by.partition("/")
        if not (token.isascii() and token.isdigit()) or not environment:
            reader.fail(by_field, by, "'<token>/<environment>'")
        claims[entry] = EntryClaim(
            entry=entry,
            slot=slot_from_millis(reader.integer(f"slot:{entry}")),
            runs=reader.integer(f"runs:{entry}"),
            token=int(token),
            environment=environment,
            claim_id=reader.text(f"claim:{entry}"),
        )
    return claims


def later(stored: EntryClaim | None, legacy: EntryClaim | None) -> EntryClaim | None:
    """The later of two claims of one entry (slots only grow, so the later one is the last)."""
    if stored is None or (legacy is not None and legacy.slot > stored.slot):
        return legacy
    return stored


def merged(
    stored: Mapping[str, EntryClaim], legacy: Mapping[str, EntryClaim]
) -> dict[str, EntryClaim]:
    """Each entry's last claim, from its claim item (``stored``) and the legacy fields."""
    return {
        entry: claim
        for entry in sorted(set(stored) | set(legacy))
        if (claim := later(stored.get(entry), legacy.get(entry))) is not None
    }
