/*
 * common.h — what every hotpath module shares: error classes and the error
 * value that carries a user-facing message, borrowed string slices, and the
 * allocation wrappers.
 *
 * Not for: anything with state. Modules include this and nothing else of
 * libcommon unless they need it.
 *
 * Error convention: a function that can fail returns int — 0 on success or a
 * negative HP_E* class — and, when it takes an hp_err_t *, fills it with a
 * message that says what was wrong with the caller's input. The class decides
 * the HTTP status and the Connect code a user sees.
 */
#ifndef HOTPATH_COMMON_H
#define HOTPATH_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HP_WUR __attribute__((warn_unused_result))
#define HP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HP_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Error classes. Values are part of the internal RPC contract (they travel
 * in RpcResponse.code): never renumber. */
enum {
    HP_OK = 0,
    HP_EINVAL = -1,       /* bad input: 400, invalid_argument */
    HP_ETOOLARGE = -2,    /* body or payload too large: 413, resource_exhausted */
    HP_EUNSUPPORTED = -3, /* understood but unsupported: 422, invalid_argument */
    HP_ELIMIT = -4,       /* a limit was hit: 429, resource_exhausted */
    HP_EAUTH = -5,        /* missing or bad tenant: 401, unauthenticated */
    HP_ENOTFOUND = -6,    /* no such route or object: 404, not_found */
    HP_EUNAVAIL = -7,     /* a peer or quorum is unavailable: 503, unavailable */
    HP_ETIMEDOUT = -8,    /* deadline passed: 504, deadline_exceeded */
    HP_ENOMEM = -9,       /* 500, resource_exhausted */
    HP_EINTERNAL = -10,   /* a bug or a server fault: 500, internal */
    HP_ESLOWBODY = -11,   /* the request body did not arrive in time: 408 */
    HP_EMETHOD = -12,     /* method not allowed: 405 */
    HP_ECANCELED = -13,   /* the caller went away: 499, canceled */
    HP_ESTALE = -14,      /* what a query planned on moved (a head was flushed, a
                           * session expired): 503, unavailable; run it again */
    HP_ELAST = HP_ESTALE, /* the lowest class: codes in [HP_ELAST, -1] are known */
};

/* An error with a message for a user. Small enough to live on the stack. */
typedef struct hp_err {
    int code;
    int detail; /* a module's finer reason (e.g. HP_PPROF_EWIRE); 0 = none */
    char msg[512];
} hp_err_t;

/* Records code and a printf-style message in e (e may be NULL) and returns
 * code, so callers can write `return hp_err_set(err, HP_EINVAL, ...)`. */
int hp_err_set(hp_err_t *e, int code, const char *fmt, ...) HP_PRINTF(3, 4);

/* Clears e to HP_OK with an empty message. */
void hp_err_clear(hp_err_t *e);

/* The HTTP status for an error class (200 for HP_OK). */
int hp_err_http_status(int code);

/* The Connect protocol code name ("invalid_argument", …) for a class. */
const char *hp_err_connect_code(int code);

/* A short name for a class ("invalid input", "unavailable", …) for logs. */
const char *hp_err_name(int code);

/* A borrowed byte string; not NUL-terminated unless said so. */
typedef struct hp_str {
    const char *p;
    size_t n;
} hp_str_t;

#define HP_STR(lit) ((hp_str_t){(lit), sizeof(lit) - 1})
/* A slice of a NUL-terminated C string (borrowed). */
hp_str_t hp_str_c(const char *s);
bool hp_str_eq(hp_str_t a, hp_str_t b);
bool hp_str_eq_c(hp_str_t a, const char *s);
int hp_str_cmp(hp_str_t a, hp_str_t b);

/* Allocation that never returns NULL: on exhaustion it logs and aborts, as
 * h2o's h2o_mem_alloc does. Every size a peer controls is bounded before it
 * reaches these, so failing here means the machine is out of memory. */
void *hp_xmalloc(size_t n);
void *hp_xcalloc(size_t count, size_t size);
void *hp_xrealloc(void *p, size_t n);
char *hp_xstrdup(const char *s);
char *hp_xstrndup(const char *s, size_t n);

/* Grows *arr (element size sz, capacity *cap) to hold at least need
 * elements, doubling. */
void hp_grow(void **arr, size_t *cap, size_t need, size_t sz);
#define HP_GROW(arr, cap, need) hp_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* Sums of values clients send wrap around instead of overflowing (signed
 * overflow is undefined behaviour; a hostile profile must not abort us). */
static inline int64_t hp_add_wrap(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

/* Milliseconds to nanoseconds, saturating at the int64 range. */
static inline int64_t hp_ms_to_ns_sat(int64_t ms)
{
    int64_t ns;
    if (__builtin_mul_overflow(ms, (int64_t)1000000, &ns))
        return ms < 0 ? INT64_MIN : INT64_MAX;
    return ns;
}

/* qsort that accepts an empty (possibly NULL) array, which qsort itself
 * must not be given. */
void hp_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* Sorts an array of C strings (borrowed) and drops duplicates in place;
 * returns the new count. */
size_t hp_sort_unique_strs(char **v, size_t n);

/* Milliseconds / nanoseconds since the Unix epoch (CLOCK_REALTIME) and a
 * monotonic millisecond clock. */
int64_t hp_now_ms(void);
int64_t hp_now_ns(void);
/* A UUID ("8-4-4-4-12" hex, or 32 hex digits; any case) into 16 bytes. */
bool hp_uuid_parse(hp_str_t s, uint8_t out[16]);
/* 16 bytes as a lowercase 8-4-4-4-12 UUID into buf (≥ 37 bytes); returns buf. */
const char *hp_uuid_format(const uint8_t id[16], char *buf);
/* Unix nanoseconds as UTC RFC 3339 to the second ("2026-11-26T01:30:00Z")
 * into buf (n ≥ 21); returns buf. */
const char *hp_fmt_rfc3339(int64_t ns, char *buf, size_t n);
int64_t hp_mono_ms(void);

/* pthread_cond_wait for at most ms milliseconds (mu held, as for any
 * condition wait). Spurious and early wake-ups happen: re-check. */
void hp_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* True when s[0..n) is valid UTF-8. */
bool hp_utf8_valid(const char *s, size_t n);

#endif
