# Megamind itself (API server, executor agent and CLI) as an image.
#
#   DOCKER_BUILDKIT=0 docker build -t megamind .
#   docker run --rm -p 127.0.0.1:8080:8080 -v megamind-data:/data megamind \
#       server --host 0.0.0.0 --port 8080 --db /data/megamind.db --registry 127.0.0.1:5000
#
# The image runs as the unprivileged user "megamind" (uid 10001). The executor
# agent drives the host's Docker engine through /var/run/docker.sock, which
# belongs to root and the host's docker group; run the executor with that
# group added, not as root:
#
#   docker run -v /var/run/docker.sock:/var/run/docker.sock \
#       --group-add "$(stat -c %g /var/run/docker.sock)" \
#       -e MEGAMIND_API_KEY=... -v megamind-state:/state megamind \
#       executor --api http://API-HOST:8080 --state-dir /state
#
# (docker-compose.yml does the same with DOCKER_GID.) Note that access to the
# Docker socket is root-equivalent on the host whatever the container's user.
#
# The customer commands are in the image too:
#
#   docker run --rm --network host -e MEGAMIND_API_KEY=... megamind hw
#
# .dockerignore keeps local state (.megamind: keys, database), .venv and .git out of
# the build context.
#
# Building needs the python:3.12-slim base image and PyPI.

# --- build: install the package and its dependencies into a venv ----------
FROM python:3.12-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/megamind
ENV PATH=/opt/megamind/bin:$PATH

WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir .

# --- runtime: the venv only, no source tree, no build tools ---------------
FROM python:3.12-slim

ENV PATH=/opt/megamind/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 megamind \
    && useradd --system --uid 10001 --gid megamind --home-dir /data \
        --no-create-home --shell /usr/sbin/nologin megamind \
    && mkdir -p /data /state \
    && chown megamind:megamind /data /state

COPY --from=build /opt/megamind /opt/megamind

# /data: the API's SQLite database; /state: the executor's state (its hwid).
# Named volumes mounted on them start out owned by the megamind user.
WORKDIR /data
USER megamind

EXPOSE 8080
ENTRYPOINT ["megamind"]
CMD ["server", "--host", "0.0.0.0"]
