# syntax=docker/dockerfile:1
# minimix-proxy container image: non-root, config mounted at /etc/minimix-proxy/.
#
#   docker build -t minimix-proxy .
#   docker run -d --name minimix-proxy \
#     -v /etc/minimix-proxy:/etc/minimix-proxy:ro \
#     -v /etc/letsencrypt:/etc/letsencrypt:ro \
#     -v minimix-state:/var/lib/minimix-proxy \
#     -p 5222:5222 -p 5223:5223 -p 127.0.0.1:5290:5290 \
#     minimix-proxy
#
# In the container set metrics = "0.0.0.0:5290" in config.toml (the default 127.0.0.1 is the
# container's own loopback) and publish it on the host's loopback only, as above. /status answers
# loopback clients only, so run the status command inside the container:
#   docker exec minimix-proxy minimix-proxy status --config /etc/minimix-proxy/config.toml
# Reload certificates without dropping connections:  docker kill --signal=HUP minimix-proxy
#
# NOTE: this Dockerfile has not been built in the project's CI or on its development machines
# (they have no container runtime); see docs/operations.md.

ARG NODE_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script would build before the sources are copied
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY core ./core
COPY proxy ./proxy
COPY tls ./tls
COPY bench ./bench
COPY types ./types
RUN npm run build && chmod 0755 dist/proxy/cli.js

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY config.example.toml ./
RUN ln -s /app/dist/proxy/cli.js /usr/local/bin/minimix-proxy \
 && mkdir -p /etc/minimix-proxy /var/lib/minimix-proxy \
 && chown node:node /var/lib/minimix-proxy \
 && chmod 0700 /var/lib/minimix-proxy
# the "node" user (uid 1000) of the official image; ports above 1024 need no capability
USER node
VOLUME ["/var/lib/minimix-proxy"]
EXPOSE 5222 5223 5290
STOPSIGNAL SIGTERM
ENTRYPOINT ["minimix-proxy"]
CMD ["--config", "/etc/minimix-proxy/config.toml", "--state-dir", "/var/lib/minimix-proxy"]
