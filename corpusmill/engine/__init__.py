"""The Beam engine: the generic filter step, one run's accounting (stats, dropped, failed, completion),
running a stage's pipeline, keyed dedup transforms. Stages build on it; filters know nothing of it."""
