# remotegrad image: the gateway and the workers (the compose file picks the command).
# Multi-stage: wheels are built in the first stage; the runtime stage holds only the
# installed packages and runs as an unprivileged user. No secrets are baked in: tokens and
# certificates come from environment variables or mounted files at run time.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY proto proto
COPY client client
COPY server server
COPY worker worker
COPY loadtest loadtest
# EXTRAS: "special" (SciPy: erfinv, digamma, polygamma on numpy workers) by default;
# EXTRAS=gpu adds CuPy for the gpu profile's workers (its special functions are cupyx's).
ARG EXTRAS="special"
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 remotegrad \
    && mkdir -p /home/remotegrad/.cupy && chown remotegrad /home/remotegrad/.cupy
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER remotegrad
ENV PYTHONUNBUFFERED=1 REMOTEGRAD_HOST=0.0.0.0
EXPOSE 50051 9100
CMD ["remotegrad", "gateway"]
