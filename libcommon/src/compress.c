/* Bounded gzip decompression (libdeflate) and gzip compression for tools.
 *
 * libdeflate is one-shot: it inflates into a fixed output buffer and stops
 * with LIBDEFLATE_INSUFFICIENT_SPACE when the buffer is full. The output bound
 * is therefore enforced by never offering more than the bound: a bomb costs
 * at most max_out bytes of memory and about twice that much inflate work. */
#include <libdeflate.h>
#include <pthread.h>
#include <string.h>

#include "hotpath/compress.h"

/* A gzip member is at least a 10-byte header, an empty deflate block and the
 * 8-byte CRC32 + ISIZE footer. */
#define GZIP_MIN_MEMBER 18
#define FIRST_GUESS_MIN ((size_t)64 * 1024)
#define GROW_MIN ((size_t)4096)

/* The one piece of per-thread state in libcommon: each thread keeps one
 * libdeflate decompressor (a few KB, not thread-safe, costly to set up per
 * call) in tls_dec. The write-once key below exists only so that the
 * decompressor is freed when its thread exits. */
static _Thread_local struct libdeflate_decompressor *tls_dec;
static pthread_key_t dec_key;
static pthread_once_t dec_key_once = PTHREAD_ONCE_INIT;

/* Destructor for dec_key: frees a thread's decompressor at thread exit. */
static void dec_free(void *d)
{
    libdeflate_free_decompressor(d);
}

static void dec_key_make(void)
{
    (void)pthread_key_create(&dec_key, dec_free);
}

/* The calling thread's decompressor, created on first use; NULL on OOM. */
static struct libdeflate_decompressor *thread_decompressor(void)
{
    if (tls_dec == NULL) {
        pthread_once(&dec_key_once, dec_key_make);
        tls_dec = libdeflate_alloc_decompressor();
        if (tls_dec != NULL)
            (void)pthread_setspecific(dec_key, tls_dec);
    }
    return tls_dec;
}

bool hp_is_gzip(const void *p, size_t n)
{
    const uint8_t *b = p;
    return n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/* What one decompression call works with. */
typedef struct gz {
    struct libdeflate_decompressor *dec;
    size_t max_out; /* the caller's bound, for messages */
    size_t start;   /* out->len when the call began */
    hp_buf_t *out;
    hp_err_t *err;
} gz_t;

/* Makes room for exactly avail more bytes in b (hp_buf_reserve doubles, which
 * could allocate up to twice the bound). */
static void reserve_exact(hp_buf_t *b, size_t avail)
{
    if (b->cap - b->len >= avail && b->data != NULL)
        return;
    size_t cap = b->len + (avail ? avail : 1);
    b->data = hp_xrealloc(b->data, cap);
    b->cap = cap;
}

/* The little-endian ISIZE field of the last gzip footer: the uncompressed
 * size mod 2^32 of the last member (all of it when there is one member). */
static size_t footer_isize(const uint8_t *in, size_t n)
{
    const uint8_t *f = in + n - 4;
    return (size_t)f[0] | (size_t)f[1] << 8 | (size_t)f[2] << 16 | (size_t)f[3] << 24;
}

/* The first output size to try for a member of n input bytes: the footer's
 * hint when it fits the budget, the whole budget when the hint says the
 * output will not fit (a bomb is refused after one bounded attempt), or a
 * guess from the input size. */
static size_t first_guess(size_t n, size_t budget, size_t hint, bool have_hint)
{
    if (have_hint && hint <= budget)
        return hint;
    if (have_hint)
        return budget;
    size_t guess = n > SIZE_MAX / 4 ? SIZE_MAX : n * 4;
    return HP_MIN(budget, HP_MAX(guess, FIRST_GUESS_MIN));
}

/* The next output size after avail was too small, capped at budget. */
static size_t next_guess(size_t avail, size_t budget)
{
    size_t next = avail > SIZE_MAX / 2 ? SIZE_MAX : avail * 2;
    return HP_MIN(budget, HP_MAX(next, GROW_MIN));
}

/* Reports a libdeflate failure other than running out of space. */
static int bad_data(gz_t *g, const char *what)
{
    return hp_err_set(g->err, HP_EINVAL, "invalid gzip data: %s", what);
}

/* Inflates the one gzip member at in[0..n) into g->out, offering at most
 * the remaining budget; *used gets the member's compressed size. Retries with
 * a doubled buffer while the output does not fit and the budget allows. */
static int inflate_member(gz_t *g, const uint8_t *in, size_t n, size_t hint, bool have_hint, size_t *used)
{
    size_t budget = g->max_out - (g->out->len - g->start);
    size_t avail = first_guess(n, budget, hint, have_hint);
    for (;;) {
        reserve_exact(g->out, avail);
        size_t got = 0;
        enum libdeflate_result r =
            libdeflate_gzip_decompress_ex(g->dec, in, n, g->out->data + g->out->len, avail, used, &got);
        if (r == LIBDEFLATE_SUCCESS) {
            g->out->len += got;
            return 0;
        }
        if (r != LIBDEFLATE_INSUFFICIENT_SPACE)
            return bad_data(g, "corrupt or truncated stream");
        if (avail >= budget)
            return hp_err_set(g->err, HP_ETOOLARGE, "profile exceeds %zu bytes after decompression",
                              g->max_out);
        avail = next_guess(avail, budget);
    }
}

/* Inflates every member of in[0..n) in turn. Only a member followed by
 * nothing may be the last; anything after a member must be another member. */
static int inflate_all(gz_t *g, const uint8_t *in, size_t n)
{
    bool first = true;
    size_t isize = n >= 4 ? footer_isize(in, n) : 0;
    while (n > 0) {
        if (!hp_is_gzip(in, n))
            return bad_data(g, first ? "not gzip (no 1f 8b header)"
                                     : "trailing bytes after the last gzip member");
        if (n < GZIP_MIN_MEMBER)
            return bad_data(g, "truncated stream");
        size_t used = 0;
        int rc = inflate_member(g, in, n, isize, first, &used);
        if (rc != 0)
            return rc;
        if (used == 0 || used > n)
            return bad_data(g, "member of zero length");
        in += used;
        n -= used;
        first = false;
    }
    return 0;
}

int hp_gunzip(const void *in, size_t n, size_t max_out, hp_buf_t *out, hp_err_t *err)
{
    if (n == 0)
        return hp_err_set(err, HP_EINVAL, "invalid gzip data: empty input");
    gz_t g = {thread_decompressor(), max_out, out->len, out, err};
    if (g.dec == NULL)
        return hp_err_set(err, HP_ENOMEM, "cannot allocate a gzip decompressor");
    int rc = inflate_all(&g, in, n);
    if (rc != 0)
        out->len = g.start;
    return rc;
}

int hp_maybe_gunzip(const void *in, size_t n, size_t max_out, hp_buf_t *scratch, const uint8_t **data,
                    size_t *len, hp_err_t *err)
{
    if (!hp_is_gzip(in, n)) {
        if (n > max_out)
            return hp_err_set(err, HP_ETOOLARGE, "profile exceeds %zu bytes", max_out);
        *data = in;
        *len = n;
        return 0;
    }
    hp_buf_reset(scratch);
    int rc = hp_gunzip(in, n, max_out, scratch, err);
    if (rc != 0)
        return rc;
    *data = scratch->data;
    *len = scratch->len;
    return 0;
}

int hp_gzip(const void *in, size_t n, int level, hp_buf_t *out)
{
    if (level < 0 || level > 12)
        return HP_EINVAL;
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    if (c == NULL)
        return HP_ENOMEM;
    size_t bound = libdeflate_gzip_compress_bound(c, n);
    hp_buf_reserve(out, bound);
    size_t got = libdeflate_gzip_compress(c, in, n, out->data + out->len, bound);
    libdeflate_free_compressor(c);
    if (got == 0)
        return HP_EINTERNAL;
    out->len += got;
    return 0;
}
