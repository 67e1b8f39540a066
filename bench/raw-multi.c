/*
 * Reference client for the curl-sockets benchmark: plain libcurl multi interface in C.
 *
 * It does the same work as the clients in bench/clients/ and prints the same one-line
 * JSON: N GETs with at most C in flight on one multi handle, a new easy handle per
 * request (--mode new-easy, the default) or one easy handle per concurrent slot reused
 * for every request (--mode reuse-easy). Each response body (and its header lines) is
 * kept in a malloc'd buffer per transfer, as a real client must keep it, then checked
 * (status 200, expected length) and freed. CURLMOPT_MAXCONNECTS is the concurrency, so
 * the pool keeps one connection per slot.
 *
 *   --url URL --count N --concurrency C --expect-bytes B --warmup W
 *   --mode new-easy|reuse-easy --forbid-reuse --callbacks --latency --loop poll|epoll
 *   --rcvbuf BYTES --buffersize BYTES --defer-ack
 *
 * --loop poll (default): curl_multi_perform + curl_multi_poll.
 * --loop epoll: CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION + curl_multi_socket_action on an
 *   epoll set, the way an event-loop application (and curl-sockets on libuv) drives libcurl.
 * --callbacks installs OPENSOCKETFUNCTION (socket() with SOCK_CLOEXEC), SOCKOPTFUNCTION
 * (TCP_NODELAY, CURL_SOCKOPT_OK) and CLOSESOCKETFUNCTION (close()) written in C.
 * --rcvbuf BYTES sets SO_RCVBUF on every socket from a SOCKOPTFUNCTION, for the README's
 *   receive-buffer measurement. Without it the client keeps libcurl's and the kernel's defaults.
 * --buffersize BYTES sets CURLOPT_BUFFERSIZE on every easy handle (libcurl's default is 16 KiB;
 *   curl-sockets starts handles at 64 KiB on libcurl 8.7+), for the equal-settings comparison.
 * --defer-ack sets TCP_DEFER_ACCEPT on every socket from a SOCKOPTFUNCTION, as curl-sockets
 *   does natively for HTTP connections: the handshake's last ACK then leaves with the request.
 *
 * Built by bench/run.mjs:  cc -O2 raw-multi.c $(curl-config --cflags --libs)
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct buffer {
  char *data;
  size_t len;
  size_t cap;
};

struct slot {
  CURL *easy;
  struct buffer body;
  struct buffer head;
  double t0;
};

struct options {
  const char *url;
  long count;
  long concurrency;
  long expect_bytes;
  long warmup;
  int reuse;
  int forbid_reuse;
  int callbacks;
  int latency;
  int epoll;
  int rcvbuf;
  long buffersize;
  int defer_ack;
};

static struct options opt = {NULL, 1000, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static CURLM *multi;
static struct slot *slots;
static long failures;
static char first_error[256];

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, const char *detail, long number) {
  failures++;
  if (first_error[0] == '\0') snprintf(first_error, sizeof first_error, fmt, detail, number);
}

static int reserve(struct buffer *b, size_t need) {
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct slot *s = userdata;
  size_t n = size * nmemb;
  if (s->body.cap == 0) {
    /* First chunk: size the buffer from Content-Length when the server sent one. */
    curl_off_t cl = -1;
    if (curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
        cl > 0 && cl < (curl_off_t)1 << 30) {
      if (reserve(&s->body, (size_t)cl)) return 0;
    }
  }
  if (reserve(&s->body, s->body.len + n)) return 0;
  memcpy(s->body.data + s->body.len, ptr, n);
  s->body.len += n;
  return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct buffer *h = userdata;
  size_t n = size * nmemb;
  if (reserve(h, h->len + n)) return 0;
  memcpy(h->data + h->len, ptr, n);
  h->len += n;
  return n;
}

static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
  (void)clientp;
  (void)purpose;
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose) {
  (void)clientp;
  (void)purpose;
  if (opt.callbacks) {
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  if (opt.rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt.rcvbuf, sizeof opt.rcvbuf);
  if (opt.defer_ack) {
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &on, sizeof on);
  }
  return CURL_SOCKOPT_OK;
}

static int close_cb(void *clientp, curl_socket_t fd) {
  (void)clientp;
  close(fd);
  return 0;
}

static CURL *make_easy(struct slot *s) {
  CURL *e = curl_easy_init();
  if (!e) return NULL;
  curl_easy_setopt(e, CURLOPT_URL, opt.url);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &s->head);
  curl_easy_setopt(e, CURLOPT_PRIVATE, s);
  if (opt.forbid_reuse) curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  if (opt.buffersize > 0) curl_easy_setopt(e, CURLOPT_BUFFERSIZE, opt.buffersize);
  if (opt.callbacks || opt.rcvbuf > 0 || opt.defer_ack) curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
  if (opt.callbacks) {
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
  }
  return e;
}

static int start(struct slot *s) {
  if (!opt.reuse || !s->easy) {
    s->easy = make_easy(s);
    if (!s->easy) return -1;
  }
  s->body = (struct buffer){NULL, 0, 0};
  s->head = (struct buffer){NULL, 0, 0};
  s->t0 = now_sec();
  return curl_multi_add_handle(multi, s->easy) == CURLM_OK ? 0 : -1;
}

/* Event loop of the epoll mode: libcurl tells which sockets to watch (SOCKETFUNCTION)
 * and when to call it back (TIMERFUNCTION); we call curl_multi_socket_action for each
 * ready socket and for the timer, as an application on an event loop (and curl-sockets
 * on libuv) does. */
static int epfd = -1;
static double timer_at = -1; /* absolute time (now_sec) of libcurl's timeout, -1: none */

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)e;
  (void)userp;
  (void)socketp;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    return 0;
  }
  struct epoll_event ev = {0};
  ev.data.fd = fd;
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  (void)m;
  (void)userp;
  timer_at = timeout_ms < 0 ? -1 : now_sec() + timeout_ms / 1000.0;
  return 0;
}

struct phase {
  long n, started, finished;
  double *lat;
};

/* Collects finished transfers: check, record, free the body, start the next request.
 * Returns -1 when a transfer could not be started. */
static int drain(struct phase *p) {
  int queued = 0;
  CURLMsg *m;
  while ((m = curl_multi_info_read(multi, &queued))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode rc = m->data.result;
    struct slot *s = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
    double t1 = now_sec();
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) fail("%s (CURLcode %ld)", curl_easy_strerror(rc), (long)rc);
    else if (status != 200) fail("%sstatus %ld", "", status);
    else if (opt.expect_bytes >= 0 && (long)s->body.len != opt.expect_bytes)
      fail("%sbody of %ld bytes", "", (long)s->body.len);
    if (p->lat) p->lat[p->finished] = (t1 - s->t0) * 1000.0;
    free(s->body.data);
    free(s->head.data);
    s->body = (struct buffer){NULL, 0, 0};
    s->head = (struct buffer){NULL, 0, 0};
    curl_multi_remove_handle(multi, e);
    if (!opt.reuse) {
      curl_easy_cleanup(e);
      s->easy = NULL;
    }
    p->finished++;
    if (p->started < p->n) {
      if (start(s)) {
        fail("%scould not start a transfer (%ld)", "", p->started);
        return -1;
      }
      p->started++;
    }
  }
  return 0;
}

/* Runs n requests at the configured concurrency. Per-request times (ms) go to lat when
 * it is not NULL. Returns -1 if the deadline (seconds, 0 = none) passed first. */
static int run_phase(long n, double *lat, double deadline) {
  struct phase p = {n, 0, 0, lat};
  for (long i = 0; i < opt.concurrency && p.started < n; i++) {
    if (start(&slots[i])) {
      fail("%scould not start a transfer (%ld)", "", 0);
      return -1;
    }
    p.started++;
  }
  int running = 0;
  while (p.finished < n) {
    if (opt.epoll) {
      int wait_ms = 1000;
      if (timer_at >= 0) {
        double left = (timer_at - now_sec()) * 1000.0;
        wait_ms = left <= 0 ? 0 : (int)left + 1;
        if (wait_ms > 1000) wait_ms = 1000;
      }
      struct epoll_event evs[64];
      int nev = epoll_wait(epfd, evs, 64, wait_ms);
      for (int i = 0; i < nev; i++) {
        int flags = 0;
        if (evs[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi, evs[i].data.fd, flags, &running);
      }
      if (timer_at >= 0 && now_sec() >= timer_at) {
        timer_at = -1;
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      }
    } else {
      curl_multi_perform(multi, &running);
    }
    if (drain(&p)) return -1;
    if (p.finished >= n) break;
    if (deadline > 0 && now_sec() > deadline) return -1;
    if (!opt.epoll) curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
  return 0;
}

static double ms_of(struct timeval tv) { return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0; }

static long peak_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (f) {
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
  }
  if (kb < 0) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    kb = ru.ru_maxrss;
  }
  return kb;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile, the same rule as bench/clients/common.mjs. */
static double percentile(const double *sorted, long n, long p) {
  long rank = (p * n + 99) / 100; /* ceil(p * n / 100) in integers */
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static void usage_exit(const char *why) {
  printf("{\"error\":");
  json_string(why);
  printf("}\n");
  exit(2);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"url", required_argument, 0, 'u'},
      {"count", required_argument, 0, 'n'},
      {"concurrency", required_argument, 0, 'c'},
      {"expect-bytes", required_argument, 0, 'b'},
      {"warmup", required_argument, 0, 'w'},
      {"mode", required_argument, 0, 'm'},
      {"probe-timeout-ms", required_argument, 0, 't'},
      {"forbid-reuse", no_argument, 0, 'f'},
      {"callbacks", no_argument, 0, 'k'},
      {"latency", no_argument, 0, 'l'},
      {"loop", required_argument, 0, 'L'},
      {"rcvbuf", required_argument, 0, 'R'},
      {"buffersize", required_argument, 0, 'B'},
      {"defer-ack", no_argument, 0, 'D'},
      {0, 0, 0, 0},
  };
  long probe_timeout_ms = 10000;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
      case 'u': opt.url = optarg; break;
      case 'n': opt.count = atol(optarg); break;
      case 'c': opt.concurrency = atol(optarg); break;
      case 'b': opt.expect_bytes = atol(optarg); break;
      case 'w': opt.warmup = atol(optarg); break;
      case 't': probe_timeout_ms = atol(optarg); break;
      case 'm':
        if (strcmp(optarg, "new-easy") == 0) opt.reuse = 0;
        else if (strcmp(optarg, "reuse-easy") == 0) opt.reuse = 1;
        else usage_exit("unknown --mode");
        break;
      case 'f': opt.forbid_reuse = 1; break;
      case 'k': opt.callbacks = 1; break;
      case 'l': opt.latency = 1; break;
      case 'R': opt.rcvbuf = atoi(optarg); break;
      case 'B': opt.buffersize = atol(optarg); break;
      case 'D': opt.defer_ack = 1; break;
      case 'L':
        if (strcmp(optarg, "epoll") == 0) opt.epoll = 1;
        else if (strcmp(optarg, "poll") == 0) opt.epoll = 0;
        else usage_exit("unknown --loop");
        break;
      default: usage_exit("bad arguments");
    }
  }
  if (!opt.url) usage_exit("--url is required");
  if (opt.latency) opt.concurrency = 1;
  if (opt.concurrency < 1 || opt.count < 1) usage_exit("count and concurrency must be >= 1");

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) usage_exit("curl_global_init failed");
  multi = curl_multi_init();
  slots = calloc((size_t)opt.concurrency, sizeof *slots);
  double *lat = opt.latency ? calloc((size_t)opt.count, sizeof *lat) : NULL;
  if (!multi || !slots || (opt.latency && !lat)) usage_exit("out of memory");
  /* Keep every connection of the run idle in the pool between requests, as the other
     clients do (one per slot). libcurl's own limit follows the easy handles added, so
     with handles removed after each transfer it closed and reopened some of them. */
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, opt.concurrency);
  if (opt.epoll) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) usage_exit("epoll_create1 failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  }

  /* Probe: one request with a deadline, as the JavaScript clients do. */
  if (run_phase(1, NULL, now_sec() + probe_timeout_ms / 1000.0) || failures) {
    printf("{\"unavailable\":");
    json_string(first_error[0] ? first_error : "probe request did not finish in time");
    printf(",\"scope\":\"scenario\"}\n");
    return 0;
  }

  run_phase(opt.warmup, NULL, 0);
  failures = 0;
  first_error[0] = '\0';

  /* Markers for the harness, which reads the server's CPU between them. */
  printf("{\"timed\":\"start\"}\n");
  fflush(stdout);
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  double t0 = now_sec();
  run_phase(opt.count, lat, 0);
  double seconds = now_sec() - t0;
  getrusage(RUSAGE_SELF, &r1);
  printf("{\"timed\":\"end\"}\n");
  fflush(stdout);
  long rss = peak_rss_kb();
  struct rusage whole;
  getrusage(RUSAGE_SELF, &whole);

  printf("{\"requests\":%ld,\"failures\":%ld,\"seconds\":%.6f,\"cpuUserMs\":%.3f,\"cpuSysMs\":%.3f,"
         "\"peakRssKb\":%ld,\"processCpuMs\":%.3f",
         opt.count, failures, seconds, ms_of(r1.ru_utime) - ms_of(r0.ru_utime),
         ms_of(r1.ru_stime) - ms_of(r0.ru_stime), rss, ms_of(whole.ru_utime) + ms_of(whole.ru_stime));
  if (first_error[0]) {
    printf(",\"firstError\":");
    json_string(first_error);
  }
  if (lat) {
    qsort(lat, (size_t)opt.count, sizeof *lat, cmp_double);
    printf(",\"p50Ms\":%.6f,\"p99Ms\":%.6f", percentile(lat, opt.count, 50),
           percentile(lat, opt.count, 99));
  }
  printf(",\"info\":{\"libcurl\":");
  json_string(curl_version_info(CURLVERSION_NOW)->version);
  printf("}}\n");
  fflush(stdout);

  for (long i = 0; i < opt.concurrency; i++)
    if (slots[i].easy) curl_easy_cleanup(slots[i].easy);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  if (epfd >= 0) close(epfd);
  free(lat);
  free(slots);
  return 0;
}
