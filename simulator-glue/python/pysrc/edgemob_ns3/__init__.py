"""Let ns-3 LENA handovers trigger edgemob migrations, and record handover traces.

``Bridge(scenario_path, trace_path, dry_run=False, results_path=None,
max_in_flight=64, migration_timeout_s=30.0)`` records every event handed to
it (``handover_start``, ``handover_end_ok``, ``handover_failure``) to a JSON
lines trace and, unless ``dry_run``, sends X2 handovers to the agents named
by the scenario: ``TriggerHandover`` to the source cell's agent,
``CompleteHandover`` to the target cell's. See
``simulator-glue/scenarios/lena_x2_handover.py`` for its use.

The native code lives in ``edgemob_ns3._native``: ns-3's Python loader
claims every shared library whose file name contains "ns3".
"""

from ._native import Bridge, check_scenario, __version__

__all__ = ["Bridge", "check_scenario", "__version__"]
