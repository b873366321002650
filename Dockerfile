# syntax=docker/dockerfile:1
#
# secdistill images. One build context, three targets:
#   worker      student + teacher workers: onnxruntime (CPU), no torch, small
#   worker-gpu  the same with onnxruntime-gpu and the CUDA/cuDNN runtime
#   distill     the redistillation job: torch (CPU build), transformers, optimum-onnx
#
#   docker build --target worker     -t secdistill/worker:0.1.0 .
#   docker build --target worker-gpu -t secdistill/worker-gpu:0.1.0 .
#   docker build --target distill    -t secdistill/distill:0.1.0 .
#
# The worker stage is last, so a plain `docker build .` gives the small worker image.
#
# Models are never baked in: workers load them from the registry volume (SECDISTILL_REGISTRY__URI).
# Every stage installs wheels only (--only-binary), so no stage needs a compiler; the final stages
# copy a finished virtualenv onto a clean base and carry no pip cache, no build tools, no source.
#
# onnxruntime-gpu is released separately from onnxruntime and may lag it by a version; this is
# the newest CUDA build on PyPI when this was written (CUDA 13 / cuDNN 9 via its extras).
ARG ORT_GPU_VERSION=1.31.1
# torch's CPU wheels (constraints.txt pins torch==2.13.0+cpu) live on the PyTorch index; without
# it pip would fail, and without the +cpu pin it would pull a multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# ---------------------------------------------------------------------------------------------
# base: the one pinned base image every stage starts from (Debian bookworm, CPython 3.11).
# Pinned by tag only: no registry was reachable where this file was written, so no digest could
# be verified. Pin the digest in the build pipeline (FROM python:3.11.14-slim-bookworm@sha256:...)
# once it has been pulled and checked.
FROM python:3.11.14-slim-bookworm AS base

# ---------------------------------------------------------------------------------------------
# build: the project wheel, built once for every target.
FROM base AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY secdistill ./secdistill
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && cp constraints.txt /wheels/constraints.txt

# ---------------------------------------------------------------------------------------------
# Virtualenvs, one per target, at the same path (/opt/venv) they will have at run time.
FROM base AS venv-worker
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Guard: the worker image must not contain torch (DESIGN.md §6: keep torch out of the workers).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: \
      -c /wheels/constraints.txt /wheels/secdistill-*.whl \
 && if /opt/venv/bin/pip show torch >/dev/null 2>&1; then echo "torch in worker image" >&2; exit 1; fi

FROM base AS venv-worker-gpu
ARG ORT_GPU_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# onnxruntime and onnxruntime-gpu install the same `onnxruntime` package and must never sit side
# by side: install the project, remove the CPU build, then add the GPU build. Its [cuda,cudnn]
# extras bring the CUDA runtime and cuDNN as NVIDIA's wheels, matched to that onnxruntime-gpu
# build, so the image needs only the host driver (NVIDIA container toolkit), not a CUDA base
# image: the nvidia/cuda runtime images carry no Python 3.11 (required by the project).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: \
      -c /wheels/constraints.txt /wheels/secdistill-*.whl \
 && /opt/venv/bin/pip uninstall --yes onnxruntime \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: \
      "onnxruntime-gpu[cuda,cudnn]==${ORT_GPU_VERSION}" \
 && /opt/venv/bin/python -c "import onnxruntime as o; assert 'CUDAExecutionProvider' in o.get_available_providers()" \
 && find /opt/venv -path '*/site-packages/nvidia/*' -type d -name lib > /opt/venv/nvidia-libs.conf

FROM base AS venv-distill
ARG TORCH_INDEX_URL
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Guard: a CUDA torch build (nvidia-* or triton wheels) means the +cpu pin was lost.
RUN python -m venv /opt/venv \
 && whl="$(echo /wheels/secdistill-*.whl)" \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: \
      --extra-index-url "${TORCH_INDEX_URL}" \
      -c /wheels/constraints.txt "${whl}[distill]" \
 && if /opt/venv/bin/pip list 2>/dev/null | grep -Ei '^(nvidia-|triton )'; then \
      echo "CUDA packages in the distill image: the torch +cpu pin was lost" >&2; exit 1; fi

# ---------------------------------------------------------------------------------------------
# runtime: what every final image shares. Non-root user 1000, no compilers, no pip cache.
FROM base AS runtime
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    SECDISTILL_REGISTRY__URI=/models \
    SECDISTILL_WORKER__DATADIR=/var/lib/secdistill/faust
# In Kubernetes the root filesystem is read-only: /var/lib/secdistill and /tmp are emptyDirs and
# /models is the registry volume. The folders exist here too so that `docker run` works.
RUN groupadd --gid 1000 secdistill \
 && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/secdistill \
      --shell /usr/sbin/nologin secdistill \
 && mkdir -p /var/lib/secdistill /models \
 && chown 1000:1000 /var/lib/secdistill /models
WORKDIR /home/secdistill
LABEL org.opencontainers.image.title="secdistill" \
      org.opencontainers.image.description="Kafka workers that label security findings with a distilled ONNX student" \
      org.opencontainers.image.licenses="Apache-2.0"

# ---------------------------------------------------------------------------------------------
FROM runtime AS distill
COPY --from=venv-distill /opt/venv /opt/venv
USER 1000:1000
# A batch job: no web server to probe. Its exit code is the health signal (CronJob history).
HEALTHCHECK NONE
ENTRYPOINT ["secdistill"]
CMD ["distill", "run", "--from-kafka", "--preset", "full"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS worker-gpu
COPY --from=venv-worker-gpu /opt/venv /opt/venv
# Let the dynamic loader find the CUDA/cuDNN libraries that came as wheels (ONNX Runtime's CUDA
# provider dlopens them by soname). ldconfig runs as root at build time; nothing changes at run.
RUN cp /opt/venv/nvidia-libs.conf /etc/ld.so.conf.d/zz-secdistill-nvidia.conf && ldconfig
# The NVIDIA container toolkit mounts the driver for these.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 1000:1000
EXPOSE 6066 6067
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('SECDISTILL_WEB__PORT') or '6066'), timeout=4)"]
ENTRYPOINT ["secdistill"]
CMD ["worker"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS worker
# Root-owned and read-only for the app user: the code cannot be modified at run time.
COPY --from=venv-worker /opt/venv /opt/venv
USER 1000:1000
# 6066: worker web port (/healthz, /readyz, /metrics); the teacher uses 6067.
EXPOSE 6066 6067
# stdlib only (no curl in the image). The port follows SECDISTILL_WEB__PORT, so set it for the
# teacher (`secdistill teacher` defaults to 6067). Kubernetes ignores HEALTHCHECK and uses the
# probes in k8s/.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('SECDISTILL_WEB__PORT') or '6066'), timeout=4)"]
ENTRYPOINT ["secdistill"]
CMD ["worker"]
