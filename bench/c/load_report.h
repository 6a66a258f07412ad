/*
 * load_report.h: the small helpers of the C load generators under bench/c (header only, so
 * each generator still builds from its one .c file): a monotonic clock, fatal errors with
 * OpenSSL's error queue, and latency samples printed as JSON quantiles.
 */
#ifndef DEVICETRUST_LOAD_REPORT_H
#define DEVICETRUST_LOAD_REPORT_H

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct samples { double *v; size_t n, cap; };

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "mqtt_connect_load: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void push(struct samples *s, double v) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof(double));
        if (!s->v) die("out of memory");
    }
    s->v[s->n++] = v;
}

static void merge(struct samples *into, const struct samples *from) {
    for (size_t i = 0; i < from->n; i++) push(into, from->v[i]);
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* `"name": {"p50": .., "p99": .., "max": ..}` (or null), then ", " unless `last`. */
static void print_quantiles(const char *name, struct samples *s, int last) {
    if (!s->n) { printf("\"%s\": null%s", name, last ? "" : ", "); return; }
    qsort(s->v, s->n, sizeof(double), compare);
    printf("\"%s\": {\"p50\": %.2f, \"p99\": %.2f, \"max\": %.2f}%s", name, s->v[s->n / 2],
           s->v[(size_t)((double)(s->n - 1) * 0.99)], s->v[s->n - 1], last ? "" : ", ");
}

#endif
