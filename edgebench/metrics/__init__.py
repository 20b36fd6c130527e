"""Pure functions from raw outputs to the metrics of DESIGN.md. numpy only, torch-free (the agent uses
:mod:`edgebench.metrics.latency` on the device)."""
