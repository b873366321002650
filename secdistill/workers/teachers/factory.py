"""Build a teacher backend (and the service around it) from settings.

Backend names: ``local`` (default), ``knn``, ``reference``, ``openai``, ``ensemble`` (curated
reference, else local) and ``ensemble:openai`` (curated reference, else the LLM).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.errors import RegistryError
from secdistill.schemas.task import TaskSpec
from secdistill.workers.config import TeacherSettings
from secdistill.workers.teachers.base import TeacherBackend
from secdistill.workers.teachers.ensemble import EnsembleBackend
from secdistill.workers.teachers.flow import ServiceOptions
from secdistill.workers.teachers.local import LocalBackend, TeacherArtefacts, load_teacher
from secdistill.workers.teachers.metrics import TeacherMetrics
from secdistill.workers.teachers.openai import OpenAIBackend
from secdistill.workers.teachers.reference import ReferenceBackend
from secdistill.workers.teachers.service import TeacherService

log = logging.getLogger(__name__)

BACKENDS = ("local", "knn", "reference", "openai", "ensemble", "ensemble:local", "ensemble:openai")


class UnknownBackend(ValueError):
    """The configured backend name is not one of BACKENDS."""


def build_backend(name: str, task: TaskSpec, teacher: TeacherSettings, registry: RegistrySettings,
                  *, teacher_ref: str | None = None, threads: int = 0) -> TeacherBackend:
    """The named backend; ``local``/``knn`` (and retrieval for ``openai``) load the teacher model."""
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown teacher backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "reference":
        return ReferenceBackend.from_corpus(task)
    if name.startswith("ensemble"):
        fallback = build_backend("openai" if name == "ensemble:openai" else "local", task, teacher,
                                 registry, teacher_ref=teacher_ref, threads=threads)
        return EnsembleBackend(task, ReferenceBackend.from_corpus(task), fallback)
    if name == "openai":
        retriever = None
        if teacher.openai.retrieved_examples > 0:
            try:
                retriever = load_teacher(registry.uri, task, teacher_ref, threads=threads).knn().retrieve
            except RegistryError as exc:  # an LLM without examples still works; say so
                log.warning("no teacher index for retrieved examples (%s); prompting without", exc)
        return OpenAIBackend(task, teacher.openai, retriever)
    arts: TeacherArtefacts = load_teacher(registry.uri, task, teacher_ref, threads=threads)
    return arts.knn() if name == "knn" else LocalBackend(arts)


def build_service(task: TaskSpec, teacher: TeacherSettings, registry: RegistrySettings, *,
                  backend: str | None = None, metrics_registry: CollectorRegistry | None = None,
                  options: ServiceOptions | None = None, teacher_ref: str | None = None,
                  threads: int = 0) -> TeacherService:
    """A TeacherService over the configured backend, auditing against the curated reference."""
    name = backend or teacher.backend
    impl = build_backend(name, task, teacher, registry, teacher_ref=teacher_ref, threads=threads)
    # The backend that *is* the reference has nothing to be audited against.
    reference = None if name == "reference" else ReferenceBackend.from_corpus(task)
    return TeacherService(impl, task, teacher, metrics=TeacherMetrics(metrics_registry),
                          reference=reference,
                          options=options or ServiceOptions(student_weight=_student_weight(name, teacher)))


def _student_weight(backend: str, teacher: TeacherSettings) -> float:
    """Blend the student into offline teachers only: an LLM's answer is the stronger signal alone."""
    return teacher.student_weight if backend in ("local", "knn", "ensemble", "ensemble:local") else 0.0
