# toil-ts: one image for the leader and for its worker pods.
#
#   buildah bud -t toil-ts:0.1.0 .          (or: docker build -t toil-ts:0.1.0 .)
#
# Build arguments:
#   BASE_IMAGE  the Node 22 base (default node:22-bookworm-slim; any Debian-based image with
#               node and npm in /usr/local/bin will do, e.g. a mirror of it)
#   VERSION, REVISION, CREATED   recorded in the OCI labels
# Build secret (optional): `--secret id=extra_ca,src=<PEM file>` adds a certificate authority
# for npm (corporate proxies); it is used during `npm ci` only and never stored in a layer.
ARG BASE_IMAGE=node:22-bookworm-slim

# ---- build: compile the TypeScript sources with the full dependency set -------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=extra_ca,required=false \
    --mount=type=cache,target=/root/.npm \
    if [ -s /run/secrets/extra_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca; fi; \
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json
# What the image needs of the sources, gathered so that the image takes it in one layer.
COPY package.json /out/
COPY bin /out/bin
COPY examples /out/examples
RUN cp -r dist /out/dist

# ---- runtime dependencies only ---------------------------------------------------------------
FROM ${BASE_IMAGE} AS deps
WORKDIR /opt/toil-ts
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=extra_ca,required=false \
    --mount=type=cache,target=/root/.npm \
    if [ -s /run/secrets/extra_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca; fi; \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && find node_modules -name '*.map' -delete

# ---- the image -------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
# tini as PID 1 (with -g, to the whole process group): SIGTERM from the kubelet reaches the
# leader (which then deletes its worker Jobs), a worker and the processes of its job at once
# (Node as PID 1 would ignore it until the grace period ends); exited children are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
WORKDIR /opt/toil-ts
COPY --from=deps /opt/toil-ts/node_modules ./node_modules
COPY --from=build /out/ ./
RUN ln -s /opt/toil-ts/bin/toil.js /usr/local/bin/toil \
 && mkdir -p /var/lib/toil /work \
 && chown 1000:1000 /var/lib/toil /work \
 && chmod 0711 /root \
 && toil --version
ENV NODE_ENV=production
# Not root: the base image's user `node` (1000:1000), by number so that the kubelet can check
# runAsNonRoot. The Kubernetes guide mounts the AWS credentials secret at /root/.aws: /root may
# be passed through (0711, not listed) so that this user reads the secret there (the manifests
# point AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE at it). A host path for the node cache
# is given to this user by the worker pods' init container.
USER 1000:1000
WORKDIR /work
ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
CMD ["toil", "--help"]
# Last, so that a new revision or date rebuilds nothing above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="toil-ts" \
      org.opencontainers.image.description="Toil-style workflows in TypeScript: the leader and its Kubernetes worker pods" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
