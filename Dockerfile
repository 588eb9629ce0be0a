# One image for the three services, the compose bootstrap and the `mesh` CLI; docker-compose.yml picks the command.
# Services run TypeScript through tsx (a production dependency): there is no build step for them.
# Node 20 (the oldest Node the project supports, package.json `engines`).

# Stage 1: production dependencies only. level ships prebuilt binaries for glibc, hence a Debian base.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Stage 2: the container healthcheck bundled into one plain JS file with esbuild (which tsx brings): it runs
# every 15 s per service, and plain node starts it in a fraction of what tsx's loader costs.
FROM deps AS healthcheck
COPY shared ./shared
COPY ops/healthcheck.ts ./ops/
RUN node_modules/.bin/esbuild ops/healthcheck.ts --bundle --platform=node --format=esm --target=node20 \
      --outfile=dist/healthcheck.mjs --log-level=warning \
      "--banner:js=import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"

# Stage 3: the runtime, owned by root and run as the unprivileged `node` user (uid 1000).
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared ./shared
COPY services ./services
COPY ops ./ops
COPY cli ./cli
COPY --from=healthcheck /app/dist ./dist
# `mesh` on PATH: docker compose exec resolver mesh --creds /mesh/sys.creds status
# Mount points for the volumes, owned by `node` so fresh named volumes are writable by it:
# /mesh identities (operator, SYS, creds), /etc/nats-mesh the rendered nats-server.conf, and the resolver's LevelDB.
RUN ln -s /app/cli/mesh.mjs /usr/local/bin/mesh \
  && mkdir -p /mesh /etc/nats-mesh /var/lib/mesh/resolver \
  && chown node:node /mesh /etc/nats-mesh /var/lib/mesh/resolver
USER node
CMD ["node", "--import", "tsx", "services/resolver/main.ts"]
