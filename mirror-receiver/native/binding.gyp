# Build of flowpin's native datagram reader (recvmmsg.c), run by `npm ci` through the install
# script in package.json (node-gyp, with the headers of the installed Node: nodedir in .npmrc).
# Linux only: elsewhere no target is built and flowpin reads its UDP sockets with Node's dgram.
{
  "targets": [
    {
      "target_name": "recvmmsg",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["recvmmsg.c"],
          "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"]
        }]
      ]
    }
  ]
}
