"""``handover ack-in-doubt``: an operator has checked slots in doubt by hand."""

from __future__ import annotations

import json

import click

from beat_handover.handover.cli.params import connection_options, get_connection, json_option
from beat_handover.handover.in_doubt import acknowledge, doubt_json, doubt_lines, parse_slot


@click.command(name="ack-in-doubt")
@connection_options
@click.argument("entry", required=False)
@click.argument("slot", required=False)
@click.option("--all", "every", is_flag=True, help="Acknowledge every slot in doubt.")
@json_option("A JSON list of the slots acknowledged.")
def ack_in_doubt(entry: str | None, slot: str | None, every: bool, as_json: bool) -> None:
    """Acknowledge a slot in doubt (ENTRY SLOT), or --all.

    A slot is in doubt when beat claimed it but cannot say it was published (the broker
    refused it, the leader was cut off or stopped in between); beat does not send it again
    unless the entry is safe to repeat. Check by hand whether the run happened (and run it if
    it must), then acknowledge it here: it leaves `handover status`, and the lock's history
    records who acknowledged it. SLOT is as `handover status` shows it."""
    if every == (entry is not None):
        raise click.UsageError("give ENTRY and SLOT, or --all (not both)")
    if entry is not None and slot is None:
        raise click.UsageError(
            f"give the SLOT of entry {entry!r} too, as `handover status` shows it"
        )
    connection = get_connection()
    chosen = None if every else [(entry, parse_slot(slot))]
    cleared = acknowledge(connection.store(), connection.settings().name, chosen)
    if as_json:
        click.echo(json.dumps([doubt_json(doubt) for doubt in cleared], indent=2))
    elif not cleared:
        click.echo("Nothing in doubt: nothing acknowledged.")
    else:
        click.echo(f"Acknowledged {len(cleared)} slot(s) in doubt:")
        click.echo("\n".join(f"  {line}" for line in doubt_lines(cleared)))
