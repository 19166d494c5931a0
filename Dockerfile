# syntax=docker/dockerfile:1
# stickmesh image: build stage compiles the workspaces; the runtime stage holds only the compiled
# packages, production dependencies and the deploy/ scripts, runs as the unprivileged `node` user
# under tini (PID 1 forwards SIGTERM so the node drains and snapshots, and reaps zombies).
#   docker build -t stickmesh .
#   docker run --rm -v $PWD/haproxy.cfg:/etc/stickmesh/haproxy.cfg:ro -e STICKMESH_NODE=lb1 stickmesh
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY packages/core/package.json packages/core/
COPY packages/peers/package.json packages/peers/
COPY packages/proxy/package.json packages/proxy/
COPY packages/cli/package.json packages/cli/
# --ignore-scripts: the root `prepare` script compiles, which needs the sources copied below.
RUN npm install --no-audit --no-fund --ignore-scripts
COPY packages packages
RUN npx tsc -b \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf packages/*/src packages/*/tsconfig.json packages/*/dist/.tsbuildinfo

FROM ${NODE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/stickmesh /var/lib/stickmesh \
 && chown node:node /var/lib/stickmesh
WORKDIR /app
ENV NODE_ENV=production \
    STICKMESH_DATA_DIR=/var/lib/stickmesh
# node_modules/@stickmesh/* are relative symlinks into packages/, kept as symlinks by COPY.
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/packages packages
COPY deploy deploy
USER node
# 8080 proxy (docker-compose.yml), 9100 admin (/healthz, /ready), 10000 peers mesh.
EXPOSE 8080 9100 10000
VOLUME ["/var/lib/stickmesh"]
HEALTHCHECK --interval=5s --timeout=2s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.STICKMESH_ADMIN_PORT||9100)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "packages/cli/bin/stickmesh.js", "start", "--config", "/etc/stickmesh/haproxy.cfg"]
