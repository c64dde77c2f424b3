# keelson: multi-stage, non-root, production dependencies only.
# Build: buildah build -t keelson . (or docker build); run: see manifests/.
# BASE: any Debian-based image with node (>= 20.19) and npm; one that already has git (and
# ca-certificates, openssh-client) needs no apt repository at build time, e.g. one made offline
# from Debian packages (test/cluster/ensure-images.sh): --build-arg BASE=registry.local/node:20
ARG BASE=docker.io/library/node:22-bookworm-slim
FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${BASE}
# git: the watcher polls with ls-remote and materialises commits with archive.
RUN command -v git >/dev/null && command -v ssh >/dev/null || { apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/*; }
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY templates ./templates
COPY registry ./registry
# State (file store, workspaces, git mirrors) lives on a volume owned by the keelson user.
ENV XDG_STATE_HOME=/var/lib/keelson NODE_ENV=production
RUN mkdir -p /var/lib/keelson && chown 10001:10001 /var/lib/keelson
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/keelson.js"]
CMD ["daemon", "--config", "/etc/keelson/keelson.yaml"]
