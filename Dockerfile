# flowpin image: `docker build -t flowpin .` (docker-compose.yml runs it; CI checks both files).
# Node 20, as package.json's engines says; the dependencies are pinned to versions that support it.
#
# It runs as the unprivileged `node` user. Two capabilities matter, and only these: CAP_NET_RAW
# for the raw GRE socket (IP protocol 47, what Arista's `tunnel mode gre` sends) and
# CAP_NET_ADMIN for a mirror receive buffer beyond net.core.rmem_max (SO_RCVBUFFORCE).
# GRE-in-UDP and the demo need neither. A non-root process gets capabilities only from file
# capabilities, and a binary marked with ones the container does not grant cannot be executed
# (capabilities(7), "Safety checking for capability-dumb binaries"), so the image holds a
# second node binary with both (`node-net`), and the entry point runs it only where the
# container's bounding set has both (`cap_drop: [ALL]`, `cap_add: [NET_RAW, NET_ADMIN]`),
# the plain one otherwise (flowpin then says the raw socket is unavailable, or the buffer capped).
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json eslint.config.js ./
COPY cli cli
COPY controller controller
COPY mirror-receiver mirror-receiver
COPY switch-adapters switch-adapters
COPY switch-sim switch-sim
COPY proto proto
COPY reliability reliability
COPY test test
COPY bench bench
COPY dashboard dashboard
# npm ci builds the native receive reader where it can; where it cannot, flowpin reads the
# mirror sockets with Node's dgram (as on a host). Only what was built is carried over.
RUN npm ci && npm prune --omit=dev \
 && mkdir -p native-out \
 && { cp mirror-receiver/native/build/Release/recvmmsg.node native-out/ 2>/dev/null || echo 'flowpin: native reader not built; the image falls back to dgram'; }

FROM node:20-bookworm-slim
ARG FLOWPIN_COMMIT=unknown
ENV NODE_ENV=production FLOWPIN_COMMIT=${FLOWPIN_COMMIT}
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
 && cp /usr/local/bin/node /usr/local/bin/node-net \
 && setcap cap_net_raw,cap_net_admin=ep /usr/local/bin/node-net \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/flowpin && chown node:node /var/lib/flowpin
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/proto proto
COPY --from=build /app/native-out/ mirror-receiver/native/build/Release/
COPY package.json docker-entrypoint.sh ./
USER node
EXPOSE 8080 4754/udp
# Liveness of the API (FLOWPIN_HEALTH_URL where the API listens elsewhere).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.FLOWPIN_HEALTH_URL || 'http://127.0.0.1:8080/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/app/docker-entrypoint.sh"]
CMD ["start"]
