/* logfmt logger on stderr; one write(2) per line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hotpath/log.h"

/* Set once at startup, before threads: see log.h. */
static const char *log_component = "hotpath";
static hp_log_level_t log_level = HP_LOG_INFO;

void hp_log_setup(const char *component, hp_log_level_t level)
{
    log_component = component;
    log_level = level;
}

int hp_log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

bool hp_log_enabled(hp_log_level_t level) { return level >= log_level; }

const char *hp_log_q(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    if (n < 3) {
        if (n)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; *s && o + 3 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < 0x20) {
            buf[o++] = ' ';
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void hp_log(hp_log_level_t level, const char *msg, const char *kvfmt, ...)
{
    static const char *lv[] = {"debug", "info", "warn", "error"};
    if (level < log_level)
        return;
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char qmsg[1024];
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s component=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, lv[level], log_component, hp_log_q(qmsg, sizeof(qmsg), msg));
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (kvfmt && *kvfmt && len + 2 < sizeof(line)) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int k = vsnprintf(line + len, sizeof(line) - len, kvfmt, ap);
        va_end(ap);
        if (k > 0)
            len += (size_t)k < sizeof(line) - len ? (size_t)k : sizeof(line) - len - 1;
    }
    if (len + 1 >= sizeof(line))
        len = sizeof(line) - 2;
    line[len++] = '\n';
    if (write(2, line, len) < 0) {
        /* stderr is gone; nowhere to report it */
    }
}
