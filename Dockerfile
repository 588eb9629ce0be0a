# One image for the three services and the compose bootstrap; docker-compose.yml picks the command.
# Services run TypeScript through tsx (a production dependency): there is no build step.

# Stage 1: production dependencies only. level ships prebuilt binaries for glibc, hence a Debian base.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Stage 2: the runtime, owned by root and run as the unprivileged `node` user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared ./shared
COPY services ./services
COPY ops ./ops
# Mount points for the volumes, owned by `node` so fresh named volumes are writable by it:
# /mesh identities (operator, SYS, creds), /etc/nats-mesh the rendered nats-server.conf, and the resolver's LevelDB.
RUN mkdir -p /mesh /etc/nats-mesh /var/lib/mesh/resolver \
  && chown node:node /mesh /etc/nats-mesh /var/lib/mesh/resolver
USER node
CMD ["node", "--import", "tsx", "services/resolver/main.ts"]
