"""Prefect deployments of the supervision loops: `duban serve` (embedded) and `duban deploy`
(work pools). config/schedules.yaml says which loops exist and when they first run."""
