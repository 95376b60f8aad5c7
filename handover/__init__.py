"""The operator's side of beat-handover: moving beat between environments, and the command line.

In layers, each importing only those below it (``tests/packaging/test_layers.py`` checks):

- ``celery_command``: all of ours that ``celery`` loads at start-up; it names ``celery
  handover`` and loads the command line only when that is run.
- ``cli/``: the ``handover`` command line, a thin click layer: one module per command group,
  the options they share, the handover's live output, exit codes from
  :class:`~beat_handover.handover.exit_codes.ExitCode`.
- ``procedure/``: the handover as a library, no click in it: its model (request, checks,
  tenures, outcome, roll-back, report), the preflight, the critical-run outlook, the store
  steps (announce, pin, confirm, roll back), the audit trail, and the flow that runs them.
- the modules here: what the commands read and show, also without click: the connection (app,
  settings, store), the app's schedule, a lock's status, the histories, the quiet-window period
  and table, the lock table and its IAM policies, exit codes, wall-clock instants.
- ``demo/``: ``make demo`` (``python -m beat_handover.handover.demo``) and its Celery app.
- ``testing/``: real processes and servers (celery beat and worker, the moto server), and the
  record a recording worker keeps, shared by the tests, the benchmarks and the demo (as
  ``celery.contrib.testing``). The product never imports it.
"""
