/* The object store's filesystem backend: one file per object under a root
 * directory, key segments as directories. A put writes a temporary file in
 * the object's directory, fsyncs it, renames it over the key and fsyncs
 * the directory, so a reader opens either the old or the new file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore_impl.h"

typedef struct fs {
    char *root; /* without a trailing '/' */
} fs_t;

/* root + '/' + key, NUL, with room for the temporary name's suffix */
#define PATH_CAP 4096

/* A path under the root: the key's file, built once per call. */
typedef struct fspath {
    char p[PATH_CAP];
    size_t root_len; /* p[root_len] is the '/' before the key */
} fspath_t;

static int set_path(const fs_t *fs, const char *key, fspath_t *path, hp_err_t *err)
{
    int n = snprintf(path->p, sizeof(path->p), "%s/%s", fs->root, key);
    if (n < 0 || (size_t)n + sizeof(HP__OBJSTORE_TMP_PREFIX) + 8 > sizeof(path->p))
        return hp_err_set(err, HP_EINVAL, "objstore: path for a key under %.200s is too long", fs->root);
    path->root_len = strlen(fs->root);
    return 0;
}

/* An errno after a system call on key, as an error naming what failed. */
static int sys_err(hp_err_t *err, int e, const char *op, const char *key, const char *what)
{
    char q[HP__OBJSTORE_QKEY];
    int code = (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS) ? HP_EUNAVAIL : HP_EINTERNAL;
    return hp_err_set(err, code, "objstore filesystem: %s %s: %s: %s", op,
                      hp__objstore_quote(key, q, sizeof(q)), what, strerror(e));
}

/* fsync of a directory, so an entry created or removed in it is durable. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Creates each missing directory of p[0..n) after skip bytes (mkdir -p),
 * fsyncing the parent of each one it creates. 0 or -1 with errno. */
static int make_dirs(char *p, size_t skip, size_t n)
{
    for (size_t i = skip + 1; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        char c = p[i];
        p[i] = '\0';
        int rc = mkdir(p, 0755);
        int e = errno;
        if (rc == 0) {
            char *slash = strrchr(p, '/');
            if (slash && slash > p) {
                *slash = '\0';
                rc = sync_dir(p);
                *slash = '/';
            }
        } else if (e == EEXIST) {
            struct stat st;
            rc = (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : (errno = ENOTDIR, -1);
        }
        p[i] = c;
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Writes all of data to fd. 0 or -1 with errno. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The filesystem cannot hold both "a" and "a/b": the error for a put
 * that would need to. */
static int conflict(hp_err_t *err, const char *key, const char *why)
{
    char q[HP__OBJSTORE_QKEY];
    return hp_err_set(err, HP_EINVAL,
                      "objstore filesystem: put %s: %s (this backend cannot hold both \"a\" and \"a/b\")",
                      hp__objstore_quote(key, q, sizeof(q)), why);
}

/* Makes the key's directory and a temporary file in it: *fd is open for
 * writing, tmp (PATH_CAP bytes) receives its path. A concurrent delete may
 * remove an empty directory on the way, so ENOENT is tried again. */
static int open_temp(fspath_t *path, const char *key, int *fd, char *tmp, hp_err_t *err)
{
    size_t dir_len = (size_t)(strrchr(path->p, '/') - path->p);
    for (int attempt = 0; attempt < 8; attempt++) {
        if (make_dirs(path->p, path->root_len, dir_len) != 0) {
            if (errno == ENOENT)
                continue;
            if (errno != ENOTDIR)
                return sys_err(err, errno, "put", key, "cannot create its directory");
            return conflict(err, key, "a key above it is an object");
        }
        snprintf(tmp, PATH_CAP, "%.*s/" HP__OBJSTORE_TMP_PREFIX "XXXXXX", (int)dir_len, path->p);
        *fd = mkostemp(tmp, O_CLOEXEC);
        if (*fd >= 0) {
            fchmod(*fd, 0644);
            return 0;
        }
        if (errno != ENOENT)
            break;
    }
    return sys_err(err, errno, "put", key, "cannot create a temporary file");
}

/* Moves the finished temporary file over the key and makes that durable. */
static int publish(fspath_t *path, const char *key, const char *tmp, hp_err_t *err)
{
    if (rename(tmp, path->p) != 0) {
        int e = errno;
        unlink(tmp);
        return e == EISDIR ? conflict(err, key, "keys below it exist")
                           : sys_err(err, e, "put", key, "rename");
    }
    char *slash = strrchr(path->p, '/');
    *slash = '\0';
    int rc = sync_dir(path->p);
    int e = errno;
    *slash = '/';
    return rc == 0 ? 0 : sys_err(err, e, "put", key, "fsync of the directory");
}

static int fs_put(void *be, const char *key, const void *data, size_t len, hp_err_t *err)
{
    fspath_t path;
    char tmp[PATH_CAP];
    int rc = set_path(be, key, &path, err);
    if (rc != 0)
        return rc;
    int fd = -1;
    rc = open_temp(&path, key, &fd, tmp, err);
    if (rc != 0)
        return rc;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return sys_err(err, e, "put", key, "write");
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return sys_err(err, e, "put", key, "close");
    }
    return publish(&path, key, tmp, err);
}

/* Opens the key's file for reading and sizes it. HP_ENOTFOUND when there
 * is no such regular file. */
static int open_object(const fs_t *fs, const char *op, const char *key, int *fd, uint64_t *size,
                       hp_err_t *err)
{
    fspath_t path;
    int rc = set_path(fs, key, &path, err);
    if (rc != 0)
        return rc;
    *fd = open(path.p, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (*fd < 0 && (errno == ENOENT || errno == ENOTDIR))
        return hp__objstore_not_found(err, key);
    if (*fd < 0)
        return sys_err(err, errno, op, key, "open");
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return hp__objstore_not_found(err, key);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Reads len bytes at off from fd into out (replacing its contents). */
static int read_at(int fd, const char *op, const char *key, uint64_t off, size_t len, hp_buf_t *out,
                   hp_err_t *err)
{
    hp_buf_reset(out);
    hp_buf_reserve(out, len);
    while (out->len < len) {
        ssize_t r = pread(fd, out->data + out->len, len - out->len, (off_t)(off + out->len));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return sys_err(err, errno, op, key, "read");
        if (r == 0)
            return sys_err(err, EIO, op, key, "the file ended early");
        out->len += (size_t)r;
    }
    return 0;
}

static int fs_get(void *be, const char *key, hp_buf_t *out, size_t max_bytes, hp_err_t *err)
{
    int fd = -1;
    uint64_t size = 0;
    int rc = open_object(be, "get", key, &fd, &size, err);
    if (rc != 0)
        return rc;
    if (size > max_bytes)
        rc = hp__objstore_too_large(err, key, true, size, max_bytes);
    else
        rc = read_at(fd, "get", key, 0, (size_t)size, out, err);
    close(fd);
    return rc;
}

static int fs_get_range(void *be, const char *key, uint64_t off, uint64_t len, hp_buf_t *out, hp_err_t *err)
{
    int fd = -1;
    uint64_t size = 0;
    int rc = open_object(be, "get_range", key, &fd, &size, err);
    if (rc != 0)
        return rc;
    if (off + len > size)
        rc = hp__objstore_short(err, key, off, len, true, size);
    else
        rc = read_at(fd, "get_range", key, off, (size_t)len, out, err);
    close(fd);
    return rc;
}

static int fs_exists(void *be, const char *key, bool *yes, hp_err_t *err)
{
    fspath_t path;
    int rc = set_path(be, key, &path, err);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(path.p, &st) == 0) {
        *yes = S_ISREG(st.st_mode);
        return 0;
    }
    if (errno == ENOENT || errno == ENOTDIR)
        return 0;
    return sys_err(err, errno, "exists", key, "stat");
}

/* Removes the now empty directories above a deleted object, up to the
 * root (best effort: a directory that is not empty stays). */
static void prune_dirs(fspath_t *path)
{
    char *slash;
    while ((slash = strrchr(path->p, '/')) != NULL && (size_t)(slash - path->p) > path->root_len) {
        *slash = '\0';
        if (rmdir(path->p) != 0)
            return;
    }
}

static int fs_delete(void *be, const char *key, hp_err_t *err)
{
    fspath_t path;
    int rc = set_path(be, key, &path, err);
    if (rc != 0)
        return rc;
    if (unlink(path.p) != 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
            return 0;
        return sys_err(err, errno, "delete", key, "unlink");
    }
    char *slash = strrchr(path.p, '/');
    *slash = '\0';
    if (sync_dir(path.p) != 0)
        return sys_err(err, errno, "delete", key, "fsync of the directory");
    *slash = '/';
    prune_dirs(&path);
    return 0;
}

/* ---- listing ---- */

/* One directory entry: name ('/' appended for a directory, so that plain
 * string order of names is the byte order of the keys beneath). */
typedef struct entry {
    char *name;
    uint64_t size;
    bool dir;
} entry_t;

typedef struct walk {
    const char *prefix;
    size_t prefix_len;
    hp_objstore_list_fn fn;
    void *ctx;
    char key[HP_OBJSTORE_KEY_MAX + 1]; /* the key being built */
    char path[PATH_CAP];               /* root + '/' + key */
    size_t root_len;
} walk_t;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->name, ((const entry_t *)b)->name);
}

static void entries_free(entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Reads directory dir's objects and subdirectories, sorted. Temporary
 * files, symlinks and other kinds of file are left out. */
static int read_entries(const char *dir, entry_t **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    entry_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        const char *nm = de->d_name;
        if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
            continue;
        if (strncmp(nm, HP__OBJSTORE_TMP_PREFIX, sizeof(HP__OBJSTORE_TMP_PREFIX) - 1) == 0)
            continue;
        if (fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
            continue;
        HP_GROW(v, cap, n + 1);
        size_t ln = strlen(nm);
        v[n].dir = S_ISDIR(st.st_mode);
        v[n].name = hp_xmalloc(ln + 2);
        memcpy(v[n].name, nm, ln);
        strcpy(v[n].name + ln, v[n].dir ? "/" : "");
        v[n].size = (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    hp_qsort(v, n, sizeof(*v), entry_cmp);
    *out = v;
    *count = n;
    return 0;
}

/* Whether anything under key[0..n) (a directory key ending in '/') can
 * start with the prefix. */
static bool dir_matches(const walk_t *w, size_t n)
{
    size_t m = HP_MIN(n, w->prefix_len);
    return memcmp(w->key, w->prefix, m) == 0;
}

static int walk_dir(walk_t *w, size_t key_len, hp_err_t *err);

/* Visits one entry of the directory whose key prefix is key[0..key_len). */
static int walk_entry(walk_t *w, size_t key_len, const entry_t *e, hp_err_t *err)
{
    size_t ln = strlen(e->name);
    if (key_len + ln > HP_OBJSTORE_KEY_MAX)
        return 0; /* not a key this store can have written */
    memcpy(w->key + key_len, e->name, ln + 1);
    if (e->dir)
        return dir_matches(w, key_len + ln) ? walk_dir(w, key_len + ln, err) : 0;
    if (key_len + ln < w->prefix_len || memcmp(w->key, w->prefix, w->prefix_len) != 0)
        return 0;
    return w->fn(w->ctx, w->key, e->size);
}

/* Lists the directory holding keys that start with key[0..key_len)
 * (empty or ending in '/'), in key order. */
static int walk_dir(walk_t *w, size_t key_len, hp_err_t *err)
{
    memcpy(w->path + w->root_len + 1, w->key, key_len);
    w->path[w->root_len + 1 + key_len] = '\0';
    entry_t *v;
    size_t n;
    if (read_entries(w->path, &v, &n) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* removed while we walked, or never there */
        return sys_err(err, errno, "list", w->prefix, "cannot read a directory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = walk_entry(w, key_len, &v[i], err);
    entries_free(v, n);
    return rc;
}

static int fs_list(void *be, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err)
{
    const fs_t *fs = be;
    walk_t *w = hp_xcalloc(1, sizeof(*w));
    w->prefix = prefix;
    w->prefix_len = strlen(prefix);
    w->fn = fn;
    w->ctx = ctx;
    w->root_len = strlen(fs->root);
    memcpy(w->path, fs->root, w->root_len);
    w->path[w->root_len] = '/';
    /* start in the deepest directory the prefix names */
    const char *slash = strrchr(prefix, '/');
    size_t start = slash ? (size_t)(slash - prefix) + 1 : 0;
    memcpy(w->key, prefix, start);
    int rc = walk_dir(w, start, err);
    free(w);
    return rc;
}

/* Whether the directory path (length len, in a PATH_CAP buffer) holds an
 * object at any depth: a regular file that is not a temporary one. Stops
 * at the first it finds; depth is bounded by the longest key. */
static bool dir_has_object(char *path, size_t len, int depth)
{
    DIR *d = depth < HP_OBJSTORE_KEY_MAX / 2 ? opendir(path) : NULL;
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        struct stat st;
        size_t ln = strlen(nm);
        if ((nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) ||
            strncmp(nm, HP__OBJSTORE_TMP_PREFIX, sizeof(HP__OBJSTORE_TMP_PREFIX) - 1) == 0 ||
            fstatat(dirfd(d), nm, &st, AT_SYMLINK_NOFOLLOW) != 0 || len + 1 + ln + 1 > PATH_CAP)
            continue;
        if (S_ISREG(st.st_mode)) {
            found = true;
        } else if (S_ISDIR(st.st_mode)) {
            path[len] = '/';
            memcpy(path + len + 1, nm, ln + 1);
            found = dir_has_object(path, len + 1 + ln, depth + 1);
            path[len] = '\0';
        }
    }
    closedir(d);
    return found;
}

/* Reports the directories of the deepest directory the prefix names whose
 * names start with the prefix's last, unfinished segment, and that hold
 * an object. */
static int fs_list_prefixes(void *be, const char *prefix, hp_objstore_list_fn fn, void *ctx, hp_err_t *err)
{
    const fs_t *fs = be;
    const char *slash = strrchr(prefix, '/');
    size_t start = slash ? (size_t)(slash - prefix) + 1 : 0, partial = strlen(prefix) - start;
    char path[PATH_CAP], key[HP_OBJSTORE_KEY_MAX + 2];
    size_t root_len = strlen(fs->root);
    snprintf(path, sizeof(path), "%s/%.*s", fs->root, (int)start, prefix);
    entry_t *v;
    size_t n;
    if (read_entries(path, &v, &n) != 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : sys_err(err, errno, "list", prefix, "cannot read a directory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t ln = strlen(v[i].name);
        if (!v[i].dir || ln < partial + 1 || memcmp(v[i].name, prefix + start, partial) != 0 ||
            start + ln > HP_OBJSTORE_KEY_MAX || root_len + 1 + start + ln >= PATH_CAP)
            continue;
        memcpy(key, prefix, start);
        memcpy(key + start, v[i].name, ln + 1);
        size_t plen = (size_t)snprintf(path, sizeof(path), "%s/%.*s", fs->root, (int)(start + ln - 1), key);
        if (dir_has_object(path, plen, 0))
            rc = fn(ctx, key, 0);
    }
    entries_free(v, n);
    return rc;
}

static void fs_describe(const void *be, hp_buf_t *out)
{
    const fs_t *fs = be;
    hp_buf_puts(out, "filesystem:\n  dir: ");
    hp_buf_put_json_str(out, fs->root, strlen(fs->root));
    hp_buf_putc(out, '\n');
}

static void fs_free(void *be)
{
    fs_t *fs = be;
    free(fs->root);
    free(fs);
}

int hp__objstore_fs_new(const hp_objstore_config_t *cfg, void **out, hp_err_t *err)
{
    const char *dir = cfg->filesystem.dir;
    size_t n = dir ? strlen(dir) : 0;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0)
        return hp_err_set(err, HP_EINVAL, "objstore filesystem: dir is not set");
    if (n + 1 + HP_OBJSTORE_KEY_MAX + sizeof(HP__OBJSTORE_TMP_PREFIX) + 8 > PATH_CAP)
        return hp_err_set(err, HP_EINVAL, "objstore filesystem: dir is longer than %d bytes",
                          (int)(PATH_CAP - 1 - HP_OBJSTORE_KEY_MAX - sizeof(HP__OBJSTORE_TMP_PREFIX) - 8));
    fs_t *fs = hp_xcalloc(1, sizeof(*fs));
    fs->root = hp_xstrndup(dir, n);
    char p[PATH_CAP];
    memcpy(p, fs->root, n + 1);
    if (make_dirs(p, 0, n) != 0) {
        int e = errno;
        fs_free(fs);
        return hp_err_set(err, HP_EINVAL, "objstore filesystem: cannot create dir %.300s: %s", dir,
                          strerror(e));
    }
    *out = fs;
    return 0;
}

const hp__objstore_ops_t hp__objstore_fs_ops = {
    .name = "filesystem",
    .put = fs_put,
    .get = fs_get,
    .get_range = fs_get_range,
    .list = fs_list,
    .list_prefixes = fs_list_prefixes,
    .del = fs_delete,
    .exists = fs_exists,
    .describe = fs_describe,
    .free = fs_free,
};
