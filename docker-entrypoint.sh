#!/bin/sh
# The image's entry point: `flowpin ARGS`, run by the node binary that holds CAP_NET_RAW and
# CAP_NET_ADMIN as file capabilities where the container grants both (bits 13 and 12 of the
# bounding set), else by the plain one (a binary marked with capabilities the container does
# not grant cannot be executed at all). See the Dockerfile's header.
set -eu
bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
node=node
if [ -n "$bnd" ] && [ $(( 0x$bnd & 0x3000 )) -eq $(( 0x3000 )) ]; then node=node-net; fi
exec "$node" /app/dist/cli/flowpin.js "$@"
