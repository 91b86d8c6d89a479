# flowpin image: build with `docker build -t flowpin .`. The raw GRE source needs
# CAP_NET_RAW (docker-compose.yml grants it); GRE-in-UDP needs nothing.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY cli cli
COPY controller controller
COPY mirror-receiver mirror-receiver
COPY switch-adapters switch-adapters
COPY switch-sim switch-sim
COPY proto proto
COPY test test
COPY bench bench
COPY dashboard dashboard
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/proto proto
# The native receive reader built by npm ci (dist/mirror-receiver/native/addon.js loads it from here).
COPY --from=build /app/mirror-receiver/native/build/Release/recvmmsg.node mirror-receiver/native/build/Release/recvmmsg.node
COPY package.json ./
EXPOSE 8080 4754/udp
ENTRYPOINT ["node", "dist/cli/flowpin.js"]
CMD ["start"]
