/*
 * flowpin's native datagram reader (Linux): a UDP socket (IPv4 or IPv6, bound to host:port)
 * or a raw IP socket of one protocol (GRE, 47), read many datagrams per system call with
 * recvmmsg(2) straight into fixed slots of an ArrayBuffer the JavaScript side owns, so that no
 * JavaScript object is made per datagram. The socket is watched with libuv's uv_poll_t on the
 * event loop of the thread that opened it (napi_get_uv_event_loop), so it works in a worker
 * thread; each readable event reads until the socket is empty (or a bounded number of rounds),
 * calling one JavaScript callback per round with the number of datagrams in the slots.
 * With holdMs > 0, a read that emptied the socket stops the poll for holdMs (a libuv timer
 * starts it again), so that a steady mirror is read in reads of many datagrams rather than a
 * wake-up of the thread every few datagrams: the kernel's wake-ups, not the copies, are most
 * of a small datagram's cost. The kernel queues meanwhile (the receive buffer: 32 MiB).
 *
 * Layout of the buffer given to start(): `slots` records of META_BYTES, then `slots` data
 * slots of `slotBytes`. Record i (uint32 words in host byte order):
 *   [0] bytes in data slot i (at most slotBytes)   [1] flags: 1 = truncated (MSG_TRUNC)
 *   [2] source address family (4 or 6)             [3] source port (0 for raw sockets)
 *   bytes 16..31: source address (4 or 16 bytes)
 *
 * Public behaviour relied on:
 * - recvmmsg(2): "A nonblocking call reads as many messages as are available (up to the limit
 *   specified by vlen) and returns immediately"; msg_len is each message's byte count, as one
 *   recvmsg(2) returns; msg_hdr is updated as recvmsg(2) describes (msg_namelen, msg_flags).
 * - recvmsg(2): msg_flags MSG_TRUNC "indicates that the trailing portion of a datagram was
 *   discarded because the datagram was larger than the buffer supplied".
 * - socket(7): SO_RCVBUF "The kernel doubles this value ... The maximum allowed value is set by
 *   the /proc/sys/net/core/rmem_max file"; SO_RCVBUFFORCE "a privileged (CAP_NET_ADMIN) process
 *   can perform the same task as SO_RCVBUF, but the rmem_max limit can be overridden".
 * - raw(7): an IPv4 raw socket of a protocol receives the IP header with the packet; "IPv6 raw
 *   sockets" (ipv6(7)/raw(7)) deliver the payload without the IPv6 header, and the source
 *   address in msg_name.
 * - udp(7): msg_name carries the sender's address; IPv6 sockets are dual-stack unless
 *   IPV6_V6ONLY, giving IPv4 senders as IPv4-mapped addresses.
 * - libuv, uv_poll_t (docs.libuv.org/en/stable/poll.html): a poll handle "occasionally" signals
 *   readable when the fd is not, so EAGAIN is expected; "the fd can be safely closed
 *   immediately after a call to uv_poll_stop() or uv_close()".
 * - Node-API (nodejs.org/api/n-api.html): napi_get_uv_event_loop gives the loop of the calling
 *   thread's environment; napi_make_callback runs a callback from native code with the
 *   microtask queue drained after it; napi_add_async_cleanup_hook lets a worker that ends while
 *   a socket is open close the libuv handle before its loop is closed.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define META_BYTES 32
#define MAX_ROUNDS 16
#define FLAG_TRUNCATED 1u

typedef struct reader reader;

/* What JavaScript holds: outlives the reader, so that close() after close is harmless. */
typedef struct holder {
  reader *r;
} holder;

struct reader {
  uv_poll_t poll;
  uv_timer_t hold;
  uint64_t hold_ms;
  int open_handles;
  holder *holder;
  int fd;
  int polling;
  int closing;
  napi_env env;
  napi_ref callback;
  napi_ref buffer;
  napi_async_context async;
  napi_async_cleanup_hook_handle hook;
  uint8_t *base;
  uint32_t slots;
  uint32_t slot_bytes;
  struct mmsghdr *msgs;
  struct iovec *iovs;
  struct sockaddr_storage *names;
};

#define CHECK(env, call)                                  \
  do {                                                    \
    if ((call) != napi_ok) {                              \
      napi_throw_error((env), NULL, "napi call failed: " #call); \
      return NULL;                                        \
    }                                                     \
  } while (0)

/* Throws an Error whose code is the errno's name (libuv's error codes are negated errnos on Unix). */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  const char *code = uv_err_name(-err);
  snprintf(msg, sizeof msg, "%s %s: %s", what, code, strerror(err));
  napi_throw_error(env, code, msg);
  return NULL;
}

static void free_buffers(reader *r) {
  free(r->msgs);
  free(r->iovs);
  free(r->names);
  r->msgs = NULL;
  r->iovs = NULL;
  r->names = NULL;
}

static void release_refs(reader *r) {
  if (r->callback != NULL) napi_delete_reference(r->env, r->callback);
  if (r->buffer != NULL) napi_delete_reference(r->env, r->buffer);
  if (r->async != NULL) napi_async_destroy(r->env, r->async);
  r->callback = NULL;
  r->buffer = NULL;
  r->async = NULL;
}

static void on_closed(uv_handle_t *h) {
  reader *r = (reader *)h->data;
  if (--r->open_handles > 0) return;
  napi_async_cleanup_hook_handle hook = r->hook;
  if (r->holder != NULL) r->holder->r = NULL;
  free_buffers(r);
  free(r);
  if (hook != NULL) napi_remove_async_cleanup_hook(hook);
}

/* Stops polling, closes the fd and the handle; memory is freed when libuv has closed it. */
static void shut(reader *r, int from_hook) {
  if (r->closing) return;
  r->closing = 1;
  if (r->polling) uv_poll_stop(&r->poll);
  uv_timer_stop(&r->hold);
  r->polling = 0;
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
  if (!from_hook) release_refs(r);
  uv_close((uv_handle_t *)&r->poll, on_closed);
  uv_close((uv_handle_t *)&r->hold, on_closed);
}

/* The JavaScript side dropped the handle: close what it left open. */
static void on_finalize(napi_env env, void *data, void *hint) {
  holder *h = (holder *)data;
  (void)env;
  (void)hint;
  if (h->r != NULL) {
    h->r->holder = NULL;
    shut(h->r, 1);
  }
  free(h);
}

static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  reader *r = (reader *)arg;
  r->hook = handle;
  if (r->closing) {
    /* close() ran already and its uv_close is pending: on_closed removes the hook. */
    return;
  }
  shut(r, 1);
}

static void call_js(reader *r, int count) {
  napi_env env = r->env;
  napi_handle_scope scope;
  napi_value cb, recv, arg, result;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, r->callback, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, count, &arg) == napi_ok) {
    if (napi_make_callback(env, r->async, recv, cb, 1, &arg, &result) == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* Fills record i of the meta area from the i-th message of the last recvmmsg. */
static void write_meta(reader *r, uint32_t i) {
  uint8_t *m = r->base + (size_t)i * META_BYTES;
  uint32_t words[4];
  struct msghdr *h = &r->msgs[i].msg_hdr;
  const struct sockaddr_storage *ss = &r->names[i];
  words[0] = r->msgs[i].msg_len;
  words[1] = (h->msg_flags & MSG_TRUNC) ? FLAG_TRUNCATED : 0;
  memset(m + 16, 0, 16);
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    words[2] = 6;
    words[3] = ntohs(a->sin6_port);
    memcpy(m + 16, &a->sin6_addr, 16);
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    words[2] = 4;
    words[3] = ntohs(a->sin_port);
    memcpy(m + 16, &a->sin_addr, 4);
  } else {
    words[2] = 0;
    words[3] = 0;
  }
  memcpy(m, words, sizeof words);
}

static void on_readable(uv_poll_t *handle, int status, int events);

/* The hold is over: watch the socket again (level-triggered: what queued meanwhile wakes it at once). */
static void on_hold_end(uv_timer_t *t) {
  reader *r = (reader *)t->data;
  if (r->closing) return;
  if (uv_poll_start(&r->poll, UV_READABLE, on_readable) == 0) r->polling = 1;
  else call_js(r, -EBADF);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  reader *r = (reader *)handle->data;
  (void)events;
  if (r->closing) return;
  if (status < 0) {
    call_js(r, status);
    return;
  }
  for (int round = 0; round < MAX_ROUNDS && !r->closing; round++) {
    for (uint32_t i = 0; i < r->slots; i++) {
      r->msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
      r->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(r->fd, r->msgs, r->slots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      call_js(r, -errno);
      return;
    }
    if (n == 0) return;
    for (int i = 0; i < n; i++) write_meta(r, (uint32_t)i);
    call_js(r, n);
    /* Fewer than asked for: the queue is empty now; the poll handle wakes us for more, at once or after the hold. */
    if ((uint32_t)n < r->slots) {
      if (r->hold_ms > 0 && !r->closing) {
        uv_poll_stop(&r->poll);
        r->polling = 0;
        uv_timer_start(&r->hold, on_hold_end, r->hold_ms, 0);
      }
      return;
    }
  }
}

static int parse_addr(int family, const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    *len = sizeof *a;
    return inet_pton(AF_INET6, host, &a->sin6_addr) == 1 ? 0 : -1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  *len = sizeof *a;
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int32_t arg_int(napi_env env, napi_value v) {
  int32_t out = 0;
  napi_get_value_int32(env, v, &out);
  return out;
}

static napi_value set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  napi_set_named_property(env, obj, name, v);
  return obj;
}

/*
 * open(kind: 'udp' | 'raw', family: 4 | 6, host: string, port: number, protocol: number,
 *      receiveBufferBytes: number) -> { handle, address, port, granted, forced }
 * kind 'raw' opens SOCK_RAW for `protocol` and binds to host only when host is not empty.
 */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  char kind[8] = {0};
  char host[INET6_ADDRSTRLEN + 1] = {0};
  size_t n = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "open(kind, family, host, port, protocol, receiveBufferBytes)");
    return NULL;
  }
  CHECK(env, napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, &n));
  int family = arg_int(env, argv[1]) == 6 ? 6 : 4;
  CHECK(env, napi_get_value_string_utf8(env, argv[2], host, sizeof host, &n));
  int port = arg_int(env, argv[3]);
  int protocol = arg_int(env, argv[4]);
  int rcvbuf = arg_int(env, argv[5]);
  int raw = strcmp(kind, "raw") == 0;
  int domain = family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(domain, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, raw ? protocol : 0);
  if (fd < 0) return throw_errno(env, raw ? "socket (raw)" : "socket (UDP)", errno);
  if (!raw || host[0] != '\0') {
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(family, host, (uint16_t)(raw ? 0 : port), &ss, &len) != 0) {
      close(fd);
      napi_throw_error(env, "EINVAL", "not an address of the socket's family");
      return NULL;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "bind", e);
    }
  }
  /* SO_RCVBUFFORCE passes net.core.rmem_max where the process may (CAP_NET_ADMIN); else SO_RCVBUF. */
  int forced = 0;
  if (rcvbuf > 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) == 0) forced = 1;
    else setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  int granted = 0;
  socklen_t glen = sizeof granted;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &glen);

  char text[INET6_ADDRSTRLEN] = {0};
  int bound_port = 0;
  struct sockaddr_storage local;
  socklen_t llen = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) {
    if (local.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr, text, sizeof text);
      bound_port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, text, sizeof text);
      bound_port = ntohs(((struct sockaddr_in *)&local)->sin_port);
    }
  }

  reader *r = calloc(1, sizeof *r);
  holder *hd = calloc(1, sizeof *hd);
  if (r == NULL || hd == NULL) {
    free(r);
    free(hd);
    close(fd);
    return throw_errno(env, "socket", ENOMEM);
  }
  r->fd = fd;
  r->env = env;
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &r->poll, fd) != 0) {
    close(fd);
    free(r);
    free(hd);
    napi_throw_error(env, NULL, "cannot watch the socket on this thread's event loop");
    return NULL;
  }
  uv_timer_init(loop, &r->hold); /* cannot fail (libuv: it only links the handle to the loop) */
  r->poll.data = r;
  r->hold.data = r;
  r->open_handles = 2;
  r->holder = hd;
  hd->r = r;
  if (napi_add_async_cleanup_hook(env, on_env_teardown, r, &r->hook) != napi_ok) r->hook = NULL;

  napi_value out, v;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_external(env, hd, on_finalize, NULL, &v));
  set_prop(env, out, "handle", v);
  CHECK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v));
  set_prop(env, out, "address", v);
  CHECK(env, napi_create_int32(env, bound_port, &v));
  set_prop(env, out, "port", v);
  CHECK(env, napi_create_int32(env, granted, &v));
  set_prop(env, out, "granted", v);
  CHECK(env, napi_get_boolean(env, forced, &v));
  set_prop(env, out, "forced", v);
  return out;
}

/* The reader behind a handle; NULL when it is not a handle, or closed (*closed set). */
static reader *arg_reader(napi_env env, napi_value v, int *closed) {
  void *p = NULL;
  napi_valuetype t;
  *closed = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) return NULL;
  reader *r = ((holder *)p)->r;
  if (r == NULL || r->closing) *closed = 1;
  return r;
}

/* start(handle, buffer: ArrayBuffer, slots, slotBytes, callback(count), holdMs) */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int closed = 0;
  reader *r = argc >= 5 ? arg_reader(env, argv[0], &closed) : NULL;
  if (r == NULL || closed || r->polling) {
    napi_throw_error(env, NULL, "start(handle, buffer, slots, slotBytes, callback): not an open, idle socket");
    return NULL;
  }
  void *data = NULL;
  size_t len = 0;
  CHECK(env, napi_get_arraybuffer_info(env, argv[1], &data, &len));
  int32_t slots = arg_int(env, argv[2]);
  int32_t slot_bytes = arg_int(env, argv[3]);
  if (slots <= 0 || slot_bytes <= 0 || (size_t)slots * (META_BYTES + (size_t)slot_bytes) > len) {
    napi_throw_range_error(env, NULL, "the buffer is smaller than slots * (32 + slotBytes)");
    return NULL;
  }
  r->base = (uint8_t *)data;
  r->slots = (uint32_t)slots;
  r->slot_bytes = (uint32_t)slot_bytes;
  r->hold_ms = argc >= 6 && arg_int(env, argv[5]) > 0 ? (uint64_t)arg_int(env, argv[5]) : 0;
  r->msgs = calloc((size_t)slots, sizeof *r->msgs);
  r->iovs = calloc((size_t)slots, sizeof *r->iovs);
  r->names = calloc((size_t)slots, sizeof *r->names);
  if (r->msgs == NULL || r->iovs == NULL || r->names == NULL) {
    free_buffers(r);
    return throw_errno(env, "start", ENOMEM);
  }
  uint8_t *slot0 = r->base + (size_t)slots * META_BYTES;
  for (int32_t i = 0; i < slots; i++) {
    r->iovs[i].iov_base = slot0 + (size_t)i * (size_t)slot_bytes;
    r->iovs[i].iov_len = (size_t)slot_bytes;
    r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
    r->msgs[i].msg_hdr.msg_name = &r->names[i];
  }
  napi_value name;
  CHECK(env, napi_create_reference(env, argv[1], 1, &r->buffer));
  CHECK(env, napi_create_reference(env, argv[4], 1, &r->callback));
  CHECK(env, napi_create_string_utf8(env, "flowpin:recvmmsg", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, NULL, name, &r->async));
  int rc = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    napi_throw_error(env, NULL, uv_strerror(rc));
    return NULL;
  }
  r->polling = 1;
  return NULL;
}

/* close(handle): stops polling and closes the socket; safe to call twice and from the callback. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int closed = 0;
  reader *r = argc >= 1 ? arg_reader(env, argv[0], &closed) : NULL;
  if (closed) return NULL;
  if (r == NULL) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  shut(r, 0);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value meta;
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (napi_create_int32(env, META_BYTES, &meta) == napi_ok) napi_set_named_property(env, exports, "META_BYTES", meta);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
