/*
 * Mirror sender for the receive benchmark, in C: a Node `dgram` sender tops out near 145,000
 * datagrams per second on this machine (one send system call and one callback per datagram),
 * below the rate the receiver is asked to take. This one sends with sendmmsg(2), 64 datagrams
 * per system call, on a connected UDP socket.
 *
 *   blast TEMPLATES HOST PORT COUNT RATE
 *
 * TEMPLATES is a file of datagrams, each a 4-byte little-endian length then its bytes (written
 * by bench/receive.bench.ts from the same mirrored SYNs the Node sender sends). COUNT datagrams
 * are sent, cycling through the templates, at about RATE per second (0: as fast as it can),
 * bounded to 60 s; then {"sent":N,"seconds":S,"refused":R} is printed on stdout.
 * sendmmsg(2): "returns the number of messages sent from msgvec"; a connected UDP socket that
 * got an ICMP port unreachable fails the next call with ECONNREFUSED (udp(7)), counted here.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_TEMPLATES 4096

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: blast TEMPLATES HOST PORT COUNT RATE\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 1;
  }
  static struct iovec iov[MAX_TEMPLATES];
  int n = 0;
  uint8_t len_le[4];
  while (n < MAX_TEMPLATES && fread(len_le, 1, 4, f) == 4) {
    size_t len = (size_t)len_le[0] | ((size_t)len_le[1] << 8) | ((size_t)len_le[2] << 16) | ((size_t)len_le[3] << 24);
    void *buf = malloc(len);
    if (buf == NULL || fread(buf, 1, len, f) != len) {
      fprintf(stderr, "blast: short template file\n");
      return 1;
    }
    iov[n].iov_base = buf;
    iov[n].iov_len = len;
    n++;
  }
  fclose(f);
  if (n == 0) {
    fprintf(stderr, "blast: no templates\n");
    return 1;
  }
  const char *host = argv[2];
  int port = atoi(argv[3]);
  long long count = atoll(argv[4]);
  double rate = atof(argv[5]);
  int v6 = strchr(host, ':') != NULL;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  int rc;
  if (v6) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a.sin6_addr) != 1) return 2;
    rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return 2;
    rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  }
  if (rc != 0) {
    perror("connect");
    return 1;
  }
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  long long sent = 0;
  long long refused = 0;
  double t0 = now_s();
  double deadline = t0 + 60.0;
  while (sent < count) {
    double t = now_s();
    if (t > deadline) break;
    if (rate > 0) {
      double due = t0 + (double)sent / rate;
      if (due > t) {
        double wait = due - t;
        struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
        nanosleep(&ts, NULL);
      }
    }
    int k = 0;
    for (; k < BATCH && sent + k < count; k++) {
      msgs[k].msg_hdr.msg_iov = &iov[(sent + k) % n];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs, (unsigned)k, 0);
    if (r < 0) {
      if (errno == ECONNREFUSED) {
        refused++;
        continue;
      }
      if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) continue;
      perror("sendmmsg");
      return 1;
    }
    sent += r;
  }
  double seconds = now_s() - t0;
  close(fd);
  printf("{\"sent\":%lld,\"seconds\":%.6f,\"refused\":%lld}\n", sent, seconds, refused);
  return 0;
}
