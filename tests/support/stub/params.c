#include "tests/support/stub/stub.h"

/* tg-stub: the test behaviours a request asks for in its query string. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* %-decodes s in place ('+' stays '+'); returns the decoded length and NUL-terminates. */
static size_t pct_decode(char *s)
{
    size_t o = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        int hi = s[i] == '%' ? hexval(s[i + 1]) : -1;
        int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
        if (lo >= 0) {
            s[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

static bool parse_num(const char *v, long min, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || n < min || n > max) {
        return false;
    }
    *out = n;
    return true;
}

static bool parse_flag(const char *v, bool *out)
{
    long n;

    if (!parse_num(v, 0, 1, &n)) {
        return false;
    }
    *out = n == 1;
    return true;
}

/* header=Name:Value. Framing headers are refused: the stub always frames its own answer. */
static bool add_extra_header(struct params *pa, char *v)
{
    char *colon = strchr(v, ':');

    if (colon == NULL || pa->nhdr == MAX_EXTRA_HDRS) {
        return false;
    }
    *colon = '\0';
    pa->hdr_name[pa->nhdr] = v;
    pa->hdr_value[pa->nhdr] = colon + 1 + strspn(colon + 1, " ");
    if (!is_token(v) || strpbrk(colon + 1, "\r\n") != NULL ||
        strcasecmp(v, "Transfer-Encoding") == 0 || strcasecmp(v, "Content-Length") == 0) {
        return false;
    }
    if (strcasecmp(v, "Connection") == 0 && has_token(pa->hdr_value[pa->nhdr], "close")) {
        pa->close_token = true; /* we announced a close: do it */
    }
    pa->nhdr++;
    return true;
}

/* file=PATH: the file's content (at most 1 MiB) is the body, read now, so that a test can
 * change what a URL answers (a key set rotated) between two requests. */
static bool read_body_file(struct params *pa, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = (size_t)1 << 20;
    size_t n;

    if (f == NULL || pa->file_body != NULL) {
        if (f != NULL) {
            fclose(f);
        }
        return false;
    }
    pa->file_body = malloc(cap);
    n = pa->file_body != NULL ? fread(pa->file_body, 1, cap, f) : 0;
    fclose(f);
    pa->body = pa->file_body;
    pa->body_len = n;
    return pa->file_body != NULL;
}

static bool apply_param(struct params *pa, const char *k, char *v, size_t vlen)
{
    long n = 0;
    bool ok = true;

    if (strcmp(k, "status") == 0) {
        ok = parse_num(v, 200, 599, &n);
        pa->status = (int)n;
    } else if (strcmp(k, "delay_ms") == 0) {
        ok = parse_num(v, 0, 3600000, &pa->delay_ms);
    } else if (strcmp(k, "trickle_ms") == 0) {
        ok = parse_num(v, 0, 3600000, &pa->trickle_ms);
    } else if (strcmp(k, "trickle_bytes") == 0) {
        ok = parse_num(v, 0, 1L << 30, &pa->trickle_bytes);
    } else if (strcmp(k, "body_bytes") == 0) {
        ok = parse_num(v, 0, 1L << 40, &pa->body_bytes);
    } else if (strcmp(k, "send_rate") == 0) {
        ok = parse_num(v, 1, 1L << 40, &pa->send_rate);
    } else if (strcmp(k, "read_rate") == 0) {
        ok = parse_num(v, 1, 1L << 40, &pa->read_rate);
    } else if (strcmp(k, "stall_after") == 0) {
        ok = parse_num(v, 0, 1L << 40, &pa->stall_after);
    } else if (strcmp(k, "reset_after") == 0) {
        ok = parse_num(v, 0, 1L << 40, &pa->reset_after);
    } else if (strcmp(k, "chunked") == 0) {
        ok = parse_flag(v, &pa->chunked);
    } else if (strcmp(k, "hang") == 0) {
        ok = parse_flag(v, &pa->hang);
    } else if (strcmp(k, "reset") == 0) {
        ok = parse_flag(v, &pa->reset);
    } else if (strcmp(k, "close") == 0) {
        ok = parse_flag(v, &pa->close);
    } else if (strcmp(k, "close_after_headers") == 0) {
        ok = parse_flag(v, &pa->close_after_headers);
    } else if (strcmp(k, "body") == 0) {
        pa->body = v;
        pa->body_len = vlen;
    } else if (strcmp(k, "file") == 0) {
        ok = read_body_file(pa, v);
    } else if (strcmp(k, "ctype") == 0) {
        pa->ctype = v;
        ok = strpbrk(v, "\r\n") == NULL;
    } else if (strcmp(k, "header") == 0) {
        ok = add_extra_header(pa, v);
    } /* other parameters belong to the application */
    return ok;
}

/* Parses the raw query of target. Returns false on a malformed test parameter. */
bool parse_params(const char *target, struct params *pa)
{
    const char *q = strchr(target, '?');

    pa->delay_ms = pa->trickle_ms = pa->trickle_bytes = pa->body_bytes = -1;
    pa->send_rate = pa->read_rate = pa->stall_after = pa->reset_after = -1;
    if (q == NULL) {
        return true;
    }
    pa->qbuf = strdup(q + 1);
    if (pa->qbuf == NULL) {
        return false;
    }
    for (char *k = pa->qbuf, *amp; k != NULL; k = amp) {
        amp = strchr(k, '&');
        if (amp != NULL) {
            *amp++ = '\0';
        }
        char *v = strchr(k, '=');
        if (v != NULL) {
            *v++ = '\0';
        }
        pct_decode(k);
        if (!apply_param(pa, k, v ? v : k + strlen(k), v ? pct_decode(v) : 0)) {
            return false;
        }
    }
    return true;
}

bool set_behave(size_t lidx, const char *target)
{
    const char *q = strchr(target, '?');
    char *copy = q != NULL && q[1] != '\0' ? strdup(q + 1) : NULL;

    if (q != NULL && q[1] != '\0' && copy == NULL) {
        return false;
    }
    pthread_mutex_lock(&stub.behave_lock);
    free(stub.ls[lidx].behave);
    stub.ls[lidx].behave = copy;
    pthread_mutex_unlock(&stub.behave_lock);
    return true;
}

bool parse_params_on(size_t lidx, const char *target, struct params *pa)
{
    const char *q = strchr(target, '?');
    struct sbuf all = {0};
    bool ok;

    pthread_mutex_lock(&stub.behave_lock);
    if (stub.ls[lidx].behave == NULL) {
        pthread_mutex_unlock(&stub.behave_lock);
        return parse_params(target, pa);
    }
    /* "?BEHAVE&QUERY": later parameters win, so the request's own override the listener's */
    sbuf_str(&all, "?");
    sbuf_str(&all, stub.ls[lidx].behave);
    pthread_mutex_unlock(&stub.behave_lock);
    if (q != NULL && q[1] != '\0') {
        sbuf_str(&all, "&");
        sbuf_str(&all, q + 1);
    }
    ok = !all.oom && parse_params(all.p, pa);
    free(all.p);
    return ok;
}
