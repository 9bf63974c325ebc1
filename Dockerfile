# The app for self-hosting and for a Hugging Face Docker Space (port 7860).
#   docker build -t cctv-faces .                                      # CPU
#   docker build -t cctv-faces --build-arg TENSORFLOW="tensorflow[and-cuda]>=2.20,<2.22" .   # NVIDIA GPU
#   docker run -p 7860:7860 cctv-faces
FROM python:3.11-slim

ARG TENSORFLOW="tensorflow>=2.20,<2.22"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    MALLOC_ARENA_MAX=2

# MALLOC_ARENA_MAX=2: without it the server's memory kept growing under load (BENCHMARKS.md, load).
# Spaces run containers as uid 1000.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY requirements.txt ./
# The TENSORFLOW argument picks the CPU or the CUDA build; the versions are pinned in requirements.txt.
RUN pip install "${TENSORFLOW}" -r requirements.txt

COPY --chown=user:user . .
USER 1000
# Fetch every published model at build time so the container starts offline.
RUN python -m hub_utils download --all
ENV HF_HUB_OFFLINE=1

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
