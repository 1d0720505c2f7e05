"""Feature and direction interventions at chosen steps, feature attribution, and the steering experiment
(``docs/steering.md``)."""
