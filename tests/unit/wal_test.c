/* Unit tests for wal.h: append, replay, group commit, drop, reopen, a
 * corrupt tail. */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotpath/wal.h"
#include "test.h"

static char dir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes the previous test's directory and names a new one. */
static void fresh_dir(void)
{
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(dir, sizeof(dir), "/tmp/hp-wal-test-%d-%ld", getpid(), (long)hp_now_ns());
}

typedef struct seen {
    int n;
    char segs[64][32];
    char recs[64][64];
} seen_t;

static int collect(void *ctx, hp_str_t seg, const uint8_t *rec, size_t n)
{
    seen_t *s = ctx;
    if (s->n >= 64 || seg.n >= 32 || n >= 64)
        return 1;
    memcpy(s->segs[s->n], seg.p, seg.n);
    s->segs[s->n][seg.n] = 0;
    memcpy(s->recs[s->n], rec, n);
    s->recs[s->n][n] = 0;
    s->n++;
    return 0;
}

static hp_wal_t *open_wal(hp_wal_sync_t sync)
{
    hp_wal_config_t cfg = {dir, sync, 50};
    hp_wal_t *w = NULL;
    hp_err_t err;
    if (hp_wal_open(&cfg, &w, &err) != 0)
        fprintf(stderr, "  open: %s\n", err.msg);
    return w;
}

static void append(hp_wal_t *w, const char *seg, const char *rec)
{
    hp_err_t err;
    CHECK_EQ_INT(hp_wal_append(w, hp_str_c(seg), rec, strlen(rec), &err), 0);
}

static void test_append_replay_reopen(void)
{
    fresh_dir();
    hp_wal_t *w = open_wal(HP_WAL_SYNC_BATCH);
    REQUIRE(w != NULL);
    append(w, "t1/100", "a");
    append(w, "t1/200", "b");
    append(w, "t1/100", "c");
    append(w, "t2/100", "d");
    hp_wal_close(w);
    w = open_wal(HP_WAL_SYNC_BATCH);
    REQUIRE(w != NULL);
    seen_t s = {0};
    hp_wal_replay_stats_t st;
    hp_err_t err;
    CHECK_EQ_INT(hp_wal_replay(w, collect, &s, &st, &err), 0);
    CHECK_EQ_INT(st.records, 4);
    CHECK_EQ_INT(st.damaged, 0);
    REQUIRE(s.n == 4);
    /* by segment, each in append order */
    CHECK_EQ_STR(s.segs[0], "t1/100");
    CHECK_EQ_STR(s.recs[0], "a");
    CHECK_EQ_STR(s.recs[1], "c");
    CHECK_EQ_STR(s.segs[2], "t1/200");
    CHECK_EQ_STR(s.segs[3], "t2/100");
    /* new appends after a reopen sort after the old ones */
    append(w, "t1/100", "e");
    memset(&s, 0, sizeof(s));
    CHECK_EQ_INT(hp_wal_replay(w, collect, &s, &st, &err), 0);
    CHECK_EQ_STR(s.recs[2], "e");
    hp_wal_close(w);
}

static void test_drop_segment(void)
{
    fresh_dir();
    hp_wal_t *w = open_wal(HP_WAL_SYNC_BATCH);
    REQUIRE(w != NULL);
    append(w, "t1/100", "a");
    append(w, "t1/1000", "b"); /* a segment whose name extends the other */
    append(w, "t1/100", "c");
    hp_err_t err;
    CHECK_EQ_INT(hp_wal_drop(w, HP_STR("t1/100"), &err), 0);
    seen_t s = {0};
    hp_wal_replay_stats_t st;
    CHECK_EQ_INT(hp_wal_replay(w, collect, &s, &st, &err), 0);
    REQUIRE(s.n == 1);
    CHECK_EQ_STR(s.segs[0], "t1/1000");
    CHECK_EQ_INT(hp_wal_append(w, HP_STR(""), "x", 1, &err), HP_EINVAL);
    hp_wal_close(w);
}

typedef struct writer {
    hp_wal_t *w;
    int id;
    int fails;
} writer_t;

static void *write_many(void *arg)
{
    writer_t *x = arg;
    char seg[32], rec[32];
    snprintf(seg, sizeof(seg), "w%d", x->id);
    for (int i = 0; i < 200; i++) {
        hp_err_t err;
        snprintf(rec, sizeof(rec), "%d", i);
        x->fails += hp_wal_append(x->w, hp_str_c(seg), rec, strlen(rec), &err) != 0;
    }
    return NULL;
}

typedef struct order {
    int last[8];
    int count;
    int bad;
} order_t;

static int check_order(void *ctx, hp_str_t seg, const uint8_t *rec, size_t n)
{
    order_t *o = ctx;
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)HP_MIN(n, 31), (const char *)rec);
    int id = seg.p[1] - '0', v = atoi(buf);
    if (v != o->last[id] + 1)
        o->bad++;
    o->last[id] = v;
    o->count++;
    return 0;
}

/* Concurrent appenders share commits; each one's records stay in order. */
static void test_group_commit(void)
{
    fresh_dir();
    hp_wal_t *w = open_wal(HP_WAL_SYNC_BATCH);
    REQUIRE(w != NULL);
    pthread_t th[4];
    writer_t x[4];
    for (int i = 0; i < 4; i++) {
        x[i] = (writer_t){w, i, 0};
        pthread_create(&th[i], NULL, write_many, &x[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(x[i].fails, 0);
    }
    order_t o;
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 8; i++)
        o.last[i] = -1;
    hp_wal_replay_stats_t st;
    hp_err_t err;
    CHECK_EQ_INT(hp_wal_replay(w, check_order, &o, &st, &err), 0);
    CHECK_EQ_INT(o.count, 800);
    CHECK_EQ_INT(o.bad, 0);
    hp_wal_close(w);
}

/* Interval mode still keeps every append across a clean reopen. */
static void test_interval_mode(void)
{
    fresh_dir();
    hp_wal_t *w = open_wal(HP_WAL_SYNC_INTERVAL);
    REQUIRE(w != NULL);
    append(w, "s", "1");
    usleep(120000);
    append(w, "s", "2");
    hp_wal_close(w);
    w = open_wal(HP_WAL_SYNC_INTERVAL);
    REQUIRE(w != NULL);
    seen_t s = {0};
    hp_wal_replay_stats_t st;
    hp_err_t err;
    CHECK_EQ_INT(hp_wal_replay(w, collect, &s, &st, &err), 0);
    CHECK_EQ_INT(s.n, 2);
    hp_wal_close(w);
}

/* Garbage appended to RocksDB's newest log file: the database still opens
 * and every complete record before it is replayed. */
static void test_corrupt_tail(void)
{
    fresh_dir();
    hp_wal_t *w = open_wal(HP_WAL_SYNC_BATCH);
    REQUIRE(w != NULL);
    for (int i = 0; i < 10; i++)
        append(w, "s", "record");
    hp_wal_close(w);
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *e;
    char newest[512] = "";
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0 && strcmp(e->d_name, newest) > 0)
            snprintf(newest, sizeof(newest), "%s", e->d_name);
    }
    closedir(d);
    REQUIRE(newest[0] != 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, newest);
    FILE *f = fopen(path, "ab");
    REQUIRE(f != NULL);
    for (int i = 0; i < 1000; i++)
        fputc((i * 131) & 0xff, f);
    fclose(f);
    w = open_wal(HP_WAL_SYNC_BATCH);
    REQUIRE(w != NULL);
    seen_t s = {0};
    hp_wal_replay_stats_t st;
    hp_err_t err;
    CHECK_EQ_INT(hp_wal_replay(w, collect, &s, &st, &err), 0);
    CHECK_EQ_INT(s.n, 10);
    hp_wal_close(w);
}

int main(void)
{
    HP_RUN(test_append_replay_reopen);
    HP_RUN(test_drop_segment);
    HP_RUN(test_group_commit);
    HP_RUN(test_interval_mode);
    HP_RUN(test_corrupt_tail);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return hp_test_done();
}
