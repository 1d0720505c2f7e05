"""Recording a model's steps: the step schema, per-step metrics, the ``Trace`` class, the tracer and the on-disk store.

``schema`` (which hook is which step), ``metrics`` (accuracy, loss, norms per step),
``trace`` (the in-memory ``Trace``), ``tracer`` (runs a model with hooks -> ``Trace``),
``store`` (the trace directory format: ``trace_to_disk`` streams chunks, ``load_trace`` reads them back),
``synthetic`` (hand-made traces for tests and examples).
"""
