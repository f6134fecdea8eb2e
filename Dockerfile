# extip's ipmanager as a drop-in for the upstream External IP Controller image
# (ipmanager on PATH, iproute2, arping for claims mode's probes and
# announcements, the same default command). Build from a checkout
# after `npm ci && npm run build`:
#   docker build -t registry.example.com/extip/ipmanager:0.1.0 .
# then set extip_image_repo / extip_image_tag to it.
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 iputils-arping \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/extip
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY dist/cli ./dist/cli
COPY bin/ipmanager.js ./bin/ipmanager.js
RUN ln -s /opt/extip/bin/ipmanager.js /usr/local/bin/ipmanager
ENV HOST_INTERFACE=eth0
CMD ["sh", "-c", "exec ipmanager n --iface=${HOST_INTERFACE} --logtostderr"]
