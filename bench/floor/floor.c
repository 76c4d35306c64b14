/* floor: the least an SSE fan-out server can do, to measure the kernel's share.
 *
 *   floor PORT REDIS_HOST REDIS_PORT [PREFIX]
 *
 * One thread, epoll. Accepts connections, reads one request head, takes `user=` and `topic=`
 * from the query, answers the SSE head and registers the socket under "<prefix>user:<u>" and
 * "<prefix>topic:<t>". Subscribes to Redis with PSUBSCRIBE <prefix>* over a raw socket; for every
 * message it builds one frame "data: <payload>\n\n" and write()s it to each registered socket
 * (a socket that would block just loses the frame: no queues, no heartbeats, no auth, no
 * history). Not a server to use: a lower bound to compare against.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
#define HBITS 17
#define HSIZE (1u << HBITS)

typedef struct { char *name; int *fds; int n, cap; } chan_t;
static chan_t table[HSIZE];

/* per fd: state and its place in up to two channel lists */
typedef struct { uint8_t state; int chan[2]; int pos[2]; int hlen; char *head; } sock_t;
static sock_t socks[MAXFD];

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

static int chan_find(const char *s, size_t n, int create) {
    uint64_t h = hash(s, n) & (HSIZE - 1);
    for (;;) {
        chan_t *c = &table[h];
        if (!c->name) {
            if (!create) return -1;
            c->name = strndup(s, n);
            return (int)h;
        }
        if (strlen(c->name) == n && memcmp(c->name, s, n) == 0) return (int)h;
        h = (h + 1) & (HSIZE - 1);
    }
}

static void chan_add(int ci, int fd, int slot) {
    chan_t *c = &table[ci];
    if (c->n == c->cap) { c->cap = c->cap ? c->cap * 2 : 4; c->fds = realloc(c->fds, sizeof(int) * (size_t)c->cap); }
    socks[fd].chan[slot] = ci;
    socks[fd].pos[slot] = c->n;
    c->fds[c->n++] = fd;
}

static void chan_remove(int fd, int slot) {
    int ci = socks[fd].chan[slot];
    if (ci < 0) return;
    chan_t *c = &table[ci];
    int p = socks[fd].pos[slot];
    int last = c->fds[--c->n];
    c->fds[p] = last;
    if (last != fd) {
        for (int s = 0; s < 2; ++s)
            if (socks[last].chan[s] == ci) socks[last].pos[s] = p;
    }
    socks[fd].chan[slot] = -1;
}

static int ep;
static const char *prefix = "sse:";

static void drop(int fd) {
    chan_remove(fd, 0);
    chan_remove(fd, 1);
    free(socks[fd].head);
    socks[fd].head = NULL;
    socks[fd].state = 0;
    close(fd);
}

static int query_param(const char *q, size_t qn, const char *key, const char **v) {
    size_t kn = strlen(key);
    for (size_t i = 0; i + kn < qn; ++i) {
        if ((i == 0 || q[i - 1] == '?' || q[i - 1] == '&') && memcmp(q + i, key, kn) == 0 && q[i + kn] == '=') {
            const char *s = q + i + kn + 1;
            size_t n = 0;
            while (s + n < q + qn && s[n] != '&' && s[n] != ' ') ++n;
            *v = s;
            return (int)n;
        }
    }
    return -1;
}

static const char ok_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                              "Connection: keep-alive\r\n\r\n: ok\n\n";

static void on_request(int fd) {
    sock_t *s = &socks[fd];
    char *line_end = memchr(s->head, '\r', (size_t)s->hlen);
    size_t ln = line_end ? (size_t)(line_end - s->head) : (size_t)s->hlen;
    const char *v;
    char name[512];
    int n = query_param(s->head, ln, "user", &v);
    if (n >= 0 && n < 400) {
        int k = snprintf(name, sizeof name, "%suser:%.*s", prefix, n, v);
        chan_add(chan_find(name, (size_t)k, 1), fd, 0);
    }
    n = query_param(s->head, ln, "topic", &v);
    if (n >= 0 && n < 400) {
        int k = snprintf(name, sizeof name, "%stopic:%.*s", prefix, n, v);
        chan_add(chan_find(name, (size_t)k, 1), fd, 1);
    }
    free(s->head);
    s->head = NULL;
    s->state = 2;
    if (write(fd, ok_head, sizeof ok_head - 1) < 0) { drop(fd); return; }
}

static void on_client(int fd) {
    sock_t *s = &socks[fd];
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) { if (n < 0 && errno == EAGAIN) return; drop(fd); return; }
    if (s->state != 1) return; /* streaming: ignore client bytes */
    if (s->hlen + n > 8192) { drop(fd); return; }
    s->head = realloc(s->head, (size_t)(s->hlen + n + 1));
    memcpy(s->head + s->hlen, buf, (size_t)n);
    s->hlen += (int)n;
    s->head[s->hlen] = 0;
    if (strstr(s->head, "\r\n\r\n")) on_request(fd);
}

/* ---- Redis: raw RESP, PSUBSCRIBE prefix* ---- */
static char *rbuf;
static size_t rlen, rcap;
static char *frame;
static size_t frame_cap;
static unsigned long long delivered, dropped_frames;

static void deliver(const char *ch, size_t chn, const char *pl, size_t pln) {
    int ci = chan_find(ch, chn, 0);
    if (ci < 0 || table[ci].n == 0) return;
    size_t need = pln + 8;
    if (need > frame_cap) { frame_cap = need * 2; frame = realloc(frame, frame_cap); }
    memcpy(frame, "data: ", 6);
    memcpy(frame + 6, pl, pln);
    frame[6 + pln] = '\n';
    frame[7 + pln] = '\n';
    chan_t *c = &table[ci];
    for (int i = 0; i < c->n; ++i) {
        ssize_t w = write(c->fds[i], frame, pln + 8);
        if (w == (ssize_t)(pln + 8)) ++delivered;
        else ++dropped_frames;
    }
}

/* parse "$<n>\r\n<bytes>\r\n" at p; returns bytes consumed or 0 if incomplete */
static size_t bulk(const char *p, size_t n, const char **s, size_t *sn) {
    if (n < 4 || p[0] != '$') return 0;
    const char *e = memchr(p, '\r', n);
    if (!e || (size_t)(e - p) + 2 > n) return 0;
    long len = strtol(p + 1, NULL, 10);
    size_t hdr = (size_t)(e - p) + 2;
    if (hdr + (size_t)len + 2 > n) return 0;
    *s = p + hdr;
    *sn = (size_t)len;
    return hdr + (size_t)len + 2;
}

static void on_redis(int rfd) {
    for (;;) {
        if (rcap - rlen < 65536) { rcap = rcap * 2 + 65536; rbuf = realloc(rbuf, rcap); }
        ssize_t n = read(rfd, rbuf + rlen, rcap - rlen);
        if (n == 0) { fprintf(stderr, "floor: redis closed\n"); exit(1); }
        if (n < 0) break;
        rlen += (size_t)n;
    }
    size_t off = 0;
    for (;;) {
        const char *p = rbuf + off;
        size_t n = rlen - off;
        if (n < 4 || p[0] != '*') break;
        const char *e = memchr(p, '\r', n);
        if (!e || (size_t)(e - p) + 2 > n) break;
        long cnt = strtol(p + 1, NULL, 10);
        size_t used = (size_t)(e - p) + 2;
        const char *parts[4];
        size_t lens[4];
        int ok = 1;
        for (long i = 0; i < cnt; ++i) {
            if (used < n && p[used] == ':') { /* integer (subscribe count) */
                const char *e2 = memchr(p + used, '\r', n - used);
                if (!e2 || (size_t)(e2 - p) + 2 > n) { ok = 0; break; }
                used = (size_t)(e2 - p) + 2;
                continue;
            }
            size_t u = bulk(p + used, n - used, &parts[i < 4 ? i : 3], &lens[i < 4 ? i : 3]);
            if (!u) { ok = 0; break; }
            used += u;
        }
        if (!ok) break;
        if (cnt == 4 && lens[0] == 8 && memcmp(parts[0], "pmessage", 8) == 0) deliver(parts[2], lens[2], parts[3], lens[3]);
        off += used;
    }
    memmove(rbuf, rbuf + off, rlen - off);
    rlen -= off;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: floor PORT REDIS_HOST REDIS_PORT [PREFIX]\n"); return 2; }
    if (argc > 4) prefix = argv[4];
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    for (int i = 0; i < MAXFD; ++i) socks[i].chan[0] = socks[i].chan[1] = -1;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Accepted sockets inherit TCP_NODELAY from the listener on Linux (the gateway does the same). */
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096)) { perror("floor: listen"); return 1; }

    int rfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in r = {0};
    r.sin_family = AF_INET;
    r.sin_port = htons((uint16_t)atoi(argv[3]));
    inet_pton(AF_INET, argv[2], &r.sin_addr);
    if (connect(rfd, (struct sockaddr *)&r, sizeof r)) { perror("floor: redis"); return 1; }
    char cmd[256];
    int pl = (int)strlen(prefix) + 1;
    int k = snprintf(cmd, sizeof cmd, "*2\r\n$10\r\nPSUBSCRIBE\r\n$%d\r\n%s*\r\n", pl, prefix);
    if (write(rfd, cmd, (size_t)k) != k) { perror("floor: redis write"); return 1; }
    fcntl(rfd, F_SETFL, O_NONBLOCK);

    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = rfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev);
    fprintf(stderr, "floor: listening on 127.0.0.1:%s\n", argv[1]);

    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0) break;
                    if (c >= MAXFD) { close(c); continue; }
                    socks[c].state = 1;
                    socks[c].hlen = 0;
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
            } else if (fd == rfd) {
                on_redis(rfd);
            } else {
                if (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) drop(fd);
                else on_client(fd);
            }
        }
    }
}
