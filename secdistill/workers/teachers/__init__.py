"""Teacher backends behind one interface, and the Faust-free teacher service.

The teacher worker's agent needs three names::

    from secdistill.workers.teachers.factory import build_service
    service = build_service(task, settings.teacher, settings.registry, metrics_registry=...)
    outcomes = await service.handle_batch(requests)   # or: await service.handle(request)

Each ``TeacherOutcome`` says what to send: ``label`` (teacher-labels topic), ``labelled`` (labelled
and route topics, non-shadow only), ``review`` (review topic), ``dead_letter_reason`` (DLQ, stage
teacher), or ``skipped`` (a shadow sample the budget keeps for deferred items: send nothing).
``service.backpressure()`` names what holds calls back (breaker, Retry-After, budget).
"""
