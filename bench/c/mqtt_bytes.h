/*
 * mqtt_bytes.h: the MQTT packets the C load generators under bench/c write and read, as
 * bytes (header only): CONNECT and CONNACK. Any other packet is the caller's business.
 */
#ifndef DEVICETRUST_MQTT_BYTES_H
#define DEVICETRUST_MQTT_BYTES_H

#include <stddef.h>
#include <string.h>

/* CONNECT: clean start, keep alive 60 s, client id `client_id`; `version` 5, or 4 = 3.1.1. */
static size_t encode_connect(unsigned char *out, const char *client_id, int version) {
    size_t id_len = strlen(client_id), n = 0;
    size_t variable = 10 + (version == 5 ? 1 : 0); /* name, level, flags, keep alive */
    size_t remaining = variable + 2 + id_len;
    out[n++] = 0x10;
    do { /* remaining length, variable byte integer */
        unsigned char b = remaining % 128;
        remaining /= 128;
        out[n++] = b | (remaining ? 0x80 : 0);
    } while (remaining);
    memcpy(out + n, "\x00\x04MQTT", 6); n += 6;
    out[n++] = (unsigned char)version; /* 5, or 4 = 3.1.1 */
    out[n++] = 0x02;                   /* clean start / clean session */
    out[n++] = 0; out[n++] = 60;       /* keep alive 60 s */
    if (version == 5) out[n++] = 0;    /* no properties */
    out[n++] = (unsigned char)(id_len >> 8); out[n++] = (unsigned char)id_len;
    memcpy(out + n, client_id, id_len);
    return n + id_len;
}

/* 1: a whole CONNACK with Success; 0: need more bytes; -1: not a CONNACK; -2: refused. */
static int parse_connack(const unsigned char *in, size_t len, int *code) {
    size_t remaining = 0, i = 1;
    int shift = 0;
    if (len < 1) return 0;
    if (in[0] != 0x20) return -1;
    for (;; i++) {
        if (i >= len) return 0;
        if (i > 4) return -1;
        remaining |= (size_t)(in[i] & 0x7f) << shift;
        shift += 7;
        if (!(in[i] & 0x80)) break;
    }
    if (remaining < 2) return -1;
    if (len < i + 1 + remaining) return 0;
    *code = in[i + 2]; /* after the acknowledge flags: v5 reason code, 3.1.1 return code */
    return *code == 0 ? 1 : -2;
}

#endif
