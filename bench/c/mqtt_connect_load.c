/*
 * mqtt_connect_load: new mutual-TLS MQTT connections per second, driven from C so the figure
 * measures the broker, not the load generator.
 *
 * Build (bench/connections.py does it at benchmark time; nothing compiled is kept in git):
 *     cc -O2 -Wall -Wextra -o mqtt_connect_load bench/c/mqtt_connect_load.c -lssl -lcrypto -lpthread
 * Needs: a C compiler and OpenSSL 3 headers (Debian: `apt-get install gcc libssl-dev`).
 *
 * Run:
 *     mqtt_connect_load --port 8883 --cafile bundle.pem --devices devices.txt \
 *                       --concurrency 32 --seconds 5 [--threads 1] [--mqtt 5|4] [--host 127.0.0.1]
 *                       [--server-name localhost] [--timeout 10]
 * devices.txt: one device a line, "<physical id> <certificate PEM file> <key PEM file>".
 *
 * Each of `concurrency` slots loops: TCP connect, TLS 1.3 handshake presenting the next
 * device's certificate (devices rotate; the server certificate is verified against --cafile
 * and --server-name), MQTT CONNECT (clean start, client id = the physical id), CONNACK read
 * and its reason code checked, DISCONNECT, then wait for the server to close (so a counted
 * connection is one the server finished with), close with SO_LINGER 0 (no TIME_WAIT: a long
 * run does not exhaust ephemeral ports). No TLS session is ever resumed: every connection is
 * a full handshake with a client certificate. (OpenSSL 3.0's client handshake costs about
 * as much CPU as the server's: about 1.2 ms here, so one thread drives ~800 conns/s.) Slots
 * are spread over --threads threads, each an epoll loop over non-blocking sockets.
 *
 * Prints one JSON object: connections completed; per_s, those completed within --seconds
 * divided by it (the ones in flight at the end still finish and count in `connections`);
 * failures by kind; refusals by CONNACK reason code; latency (ms) from connect() to CONNACK
 * and to the server's close; the generator's own CPU time per connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load_report.h"
#include "mqtt_bytes.h"

enum state { S_IDLE, S_TCP, S_TLS, S_SEND_CONNECT, S_CONNACK, S_SEND_DISCONNECT, S_CLOSE };
enum failure { F_TCP, F_TLS, F_WRITE, F_EOF_BEFORE_CONNACK, F_BAD_PACKET, F_REFUSED, F_TIMEOUT,
               F_COUNT };
static const char *FAILURE_NAMES[F_COUNT] = {"tcp_connect", "tls_handshake", "write",
                                             "closed_before_connack", "bad_connack",
                                             "connack_refused", "timeout"};

struct device { char id[128]; SSL_CTX *ctx; }; /* a context each: its certificate and key */

struct slot {
    enum state state;
    int fd;
    SSL *ssl;
    double started, deadline;
    unsigned char in[512];
    size_t in_len;
    unsigned char out[256];
    size_t out_len;
};

struct worker {
    pthread_t thread;
    int epfd;
    size_t first, count; /* its slots */
    uint64_t done, in_window, failures[F_COUNT], refused_codes[256];
    struct samples connack_ms, total_ms;
};

static struct {
    const char *host, *cafile, *devices_file, *server_name;
    int port, concurrency, threads, mqtt_version;
    double seconds, timeout;
} opt = {"127.0.0.1", NULL, NULL, "localhost", 0, 32, 1, 5, 5.0, 10.0};

static X509_STORE *trust;
static struct device *devices;
static size_t device_count;
static atomic_size_t next_device;
static struct slot *slots;
static struct sockaddr_in server;
static double deadline;

/* ---- the connection state machine --------------------------------------------------------- */

static void watch(struct worker *w, size_t index, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.u64 = index};
    if (epoll_ctl(w->epfd, op, slots[index].fd, &ev) != 0) die("epoll_ctl");
}

static void release(struct worker *w, struct slot *s) {
    if (s->ssl) { SSL_free(s->ssl); s->ssl = NULL; }
    if (s->fd >= 0) {
        struct linger hard = {1, 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
    s->state = S_IDLE;
}

static void fail(struct worker *w, struct slot *s, enum failure kind) {
    w->failures[kind]++;
    release(w, s);
}

static void start(struct worker *w, size_t index) {
    struct slot *s = &slots[index];
    struct device *d = &devices[atomic_fetch_add(&next_device, 1) % device_count];
    int one = 1;
    s->started = now_s();
    s->deadline = s->started + opt.timeout;
    s->in_len = 0;
    s->out_len = encode_connect(s->out, d->id, opt.mqtt_version);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) die("socket");
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->ssl = SSL_new(d->ctx);
    if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1 ||
        SSL_set_tlsext_host_name(s->ssl, opt.server_name) != 1 ||
        SSL_set1_host(s->ssl, opt.server_name) != 1)
        die("SSL_new");
    SSL_set_connect_state(s->ssl);
    s->state = S_TCP;
    if (connect(s->fd, (struct sockaddr *)&server, sizeof server) != 0 && errno != EINPROGRESS) {
        w->failures[F_TCP]++;
        SSL_free(s->ssl); s->ssl = NULL; close(s->fd); s->fd = -1; s->state = S_IDLE;
        return;
    }
    watch(w, index, EPOLLOUT, EPOLL_CTL_ADD);
}

/* After an SSL call returned `r`: wait for what OpenSSL wants; 0 to retry later, -1 failed. */
static int wants(struct worker *w, size_t index, int r) {
    int e = SSL_get_error(slots[index].ssl, r);
    if (e == SSL_ERROR_WANT_READ) { watch(w, index, EPOLLIN, EPOLL_CTL_MOD); return 0; }
    if (e == SSL_ERROR_WANT_WRITE) { watch(w, index, EPOLLOUT, EPOLL_CTL_MOD); return 0; }
    ERR_clear_error();
    return -1;
}

static void step(struct worker *w, size_t index) {
    struct slot *s = &slots[index];
    int r, code = 0;
    for (;;) {
        switch (s->state) {
        case S_IDLE:
            return;
        case S_TCP: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) { fail(w, s, F_TCP); return; }
            s->state = S_TLS;
            break;
        }
        case S_TLS:
            r = SSL_do_handshake(s->ssl);
            if (r != 1) { if (wants(w, index, r) < 0) fail(w, s, F_TLS); return; }
            s->state = S_SEND_CONNECT;
            break;
        case S_SEND_CONNECT:
        case S_SEND_DISCONNECT:
            r = SSL_write(s->ssl, s->out, (int)s->out_len);
            if (r <= 0) { if (wants(w, index, r) < 0) fail(w, s, F_WRITE); return; }
            if (s->state == S_SEND_CONNECT) {
                s->state = S_CONNACK;
            } else {
                s->state = S_CLOSE;
            }
            break;
        case S_CONNACK:
            r = SSL_read(s->ssl, s->in + s->in_len, (int)(sizeof s->in - s->in_len));
            if (r <= 0) {
                if (wants(w, index, r) < 0) fail(w, s, F_EOF_BEFORE_CONNACK);
                return;
            }
            s->in_len += (size_t)r;
            r = parse_connack(s->in, s->in_len, &code);
            if (r == 0) {
                if (s->in_len == sizeof s->in) { fail(w, s, F_BAD_PACKET); return; }
                break;
            }
            if (r == -1) { fail(w, s, F_BAD_PACKET); return; }
            if (r == -2) { w->refused_codes[code & 0xff]++; fail(w, s, F_REFUSED); return; }
            push(&w->connack_ms, (now_s() - s->started) * 1000.0);
            s->out[0] = 0xe0; s->out[1] = 0x00; s->out_len = 2; /* DISCONNECT, success */
            s->state = S_SEND_DISCONNECT;
            break;
        case S_CLOSE: /* anything the server sends now is discarded; its close ends it */
            r = SSL_read(s->ssl, s->in, (int)sizeof s->in);
            if (r > 0) break;
            if (wants(w, index, r) == 0) return;
            w->done++;
            w->in_window += now_s() <= deadline;
            push(&w->total_ms, (now_s() - s->started) * 1000.0);
            release(w, s);
            return;
        }
    }
}

static void *run(void *arg) {
    struct worker *w = arg;
    struct epoll_event events[256];
    double last_sweep = 0;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) die("epoll_create1");
    for (;;) {
        double t = now_s();
        int live = 0;
        for (size_t i = w->first; i < w->first + w->count; i++) {
            if (slots[i].state == S_IDLE && t < deadline) start(w, i);
            live += slots[i].state != S_IDLE;
        }
        if (!live) break;
        int n = epoll_wait(w->epfd, events, 256, 50);
        for (int k = 0; k < n; k++) step(w, (size_t)events[k].data.u64);
        t = now_s();
        if (t - last_sweep > 0.05) { /* per-connection timeouts */
            last_sweep = t;
            for (size_t i = w->first; i < w->first + w->count; i++)
                if (slots[i].state != S_IDLE && t > slots[i].deadline)
                    fail(w, &slots[i], F_TIMEOUT);
        }
    }
    close(w->epfd);
    return NULL;
}

/* ---- setup and report --------------------------------------------------------------------- */

static void load_devices(void) {
    FILE *f = fopen(opt.devices_file, "r");
    char id[128], cert_path[4096], key_path[4096];
    size_t cap = 0;
    if (!f) die("cannot open --devices");
    while (fscanf(f, "%127s %4095s %4095s", id, cert_path, key_path) == 3) {
        if (device_count == cap) {
            cap = cap ? cap * 2 : 256;
            devices = realloc(devices, cap * sizeof *devices);
            if (!devices) die("out of memory");
        }
        struct device *d = &devices[device_count++];
        snprintf(d->id, sizeof d->id, "%s", id);
        d->ctx = SSL_CTX_new(TLS_client_method());
        if (!d->ctx || !SSL_CTX_set_min_proto_version(d->ctx, TLS1_3_VERSION) ||
            SSL_CTX_use_certificate_chain_file(d->ctx, cert_path) != 1 ||
            SSL_CTX_use_PrivateKey_file(d->ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(d->ctx) != 1)
            die("a device certificate or key does not load");
        SSL_CTX_set1_cert_store(d->ctx, trust); /* one store of trust anchors, shared */
        SSL_CTX_set_verify(d->ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_session_cache_mode(d->ctx, SSL_SESS_CACHE_OFF);
    }
    fclose(f);
    if (!device_count) die("no devices in --devices");
}

static void usage(void) {
    fprintf(stderr, "usage: mqtt_connect_load --port P --cafile F --devices F [--host H] "
                    "[--server-name N] [--concurrency C] [--seconds T] [--threads N] "
                    "[--mqtt 5|4] [--timeout S]\n");
    exit(2);
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--host")) opt.host = v;
        else if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--cafile")) opt.cafile = v;
        else if (!strcmp(a, "--devices")) opt.devices_file = v;
        else if (!strcmp(a, "--server-name")) opt.server_name = v;
        else if (!strcmp(a, "--concurrency")) opt.concurrency = atoi(v);
        else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
        else if (!strcmp(a, "--threads")) opt.threads = atoi(v);
        else if (!strcmp(a, "--mqtt")) opt.mqtt_version = atoi(v);
        else if (!strcmp(a, "--timeout")) opt.timeout = atof(v);
        else usage();
        i++;
    }
    if (opt.port <= 0 || opt.port > 65535 || !opt.cafile || !opt.devices_file ||
        opt.concurrency < 1 || opt.threads < 1 || opt.threads > opt.concurrency ||
        opt.seconds <= 0 || opt.timeout <= 0 || (opt.mqtt_version != 5 && opt.mqtt_version != 4))
        usage();
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server.sin_addr) != 1) die("--host is an IPv4 address");
    trust = X509_STORE_new();
    if (!trust || X509_STORE_load_file(trust, opt.cafile) != 1) die("--cafile does not load");
    load_devices();
    if (device_count < (size_t)opt.concurrency)
        fprintf(stderr, "mqtt_connect_load: fewer devices than --concurrency: a device may "
                        "connect twice at once (a session takeover)\n");

    slots = calloc((size_t)opt.concurrency, sizeof *slots);
    struct worker *workers = calloc((size_t)opt.threads, sizeof *workers);
    if (!slots || !workers) die("out of memory");
    for (int i = 0; i < opt.concurrency; i++) slots[i].fd = -1;
    double began = now_s();
    deadline = began + opt.seconds;
    size_t per = (size_t)opt.concurrency / (size_t)opt.threads;
    size_t extra = (size_t)opt.concurrency % (size_t)opt.threads, first = 0;
    for (int t = 0; t < opt.threads; t++) {
        workers[t].first = first;
        workers[t].count = per + ((size_t)t < extra);
        first += workers[t].count;
        if (pthread_create(&workers[t].thread, NULL, run, &workers[t]) != 0) die("pthread_create");
    }
    uint64_t done = 0, in_window = 0, failures[F_COUNT] = {0}, codes[256] = {0};
    struct samples connack = {0}, total = {0};
    for (int t = 0; t < opt.threads; t++) {
        pthread_join(workers[t].thread, NULL);
        done += workers[t].done;
        in_window += workers[t].in_window;
        for (int k = 0; k < F_COUNT; k++) failures[k] += workers[t].failures[k];
        for (int k = 0; k < 256; k++) codes[k] += workers[t].refused_codes[k];
        merge(&connack, &workers[t].connack_ms);
        merge(&total, &workers[t].total_ms);
    }
    double elapsed = now_s() - began;
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                   (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    printf("{\"driver\": \"c\", \"mqtt\": %d, \"concurrency\": %d, \"threads\": %d, "
           "\"devices\": %zu, \"seconds\": %.3f, \"connections\": %llu, \"per_s\": %.1f, "
           "\"client_cpu_ms_per_conn\": %.3f, ",
           opt.mqtt_version, opt.concurrency, opt.threads, device_count, elapsed,
           (unsigned long long)done, (double)in_window / opt.seconds,
           done ? cpu_s * 1000.0 / (double)done : 0.0);
    printf("\"failures\": {");
    for (int k = 0; k < F_COUNT; k++)
        printf("\"%s\": %llu%s", FAILURE_NAMES[k], (unsigned long long)failures[k],
               k + 1 < F_COUNT ? ", " : "");
    printf("}, \"refused_codes\": {");
    int first_code = 1;
    for (int k = 0; k < 256; k++)
        if (codes[k]) {
            printf("%s\"0x%02x\": %llu", first_code ? "" : ", ", k, (unsigned long long)codes[k]);
            first_code = 0;
        }
    printf("}, \"latency_ms\": {");
    print_quantiles("connack", &connack, 0);
    print_quantiles("closed", &total, 1);
    printf("}}\n");
    return 0;
}
