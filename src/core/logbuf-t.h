/* logbuf-t.h — types of the buffered logs (core/logbuf.h): a log's configuration and where
 * a listener's lines go once its destination is open. Types only.
 */
#ifndef STRATA_CORE_LOGBUF_T_H
#define STRATA_CORE_LOGBUF_T_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"

enum log_format { LOG_FORMAT_OFF, LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

/* Where a log goes instead of a file: a syslog daemon (RFC 5424 messages, one datagram
 * per line) on a Unix datagram socket (/dev/log) or over UDP. */
struct syslog_conf {
    char *text;               /* as configured ("/dev/log", "udp:127.0.0.1:514"); NULL = off */
    bool unix_path;           /* text is a socket path; else addr */
    struct sockaddr_any addr; /* UDP */
    uint32_t facility;        /* 0..23, default 16 (local0) */
};

/* A `log` or `access_log` section of the configuration. */
struct log_conf {
    enum log_format format;
    char *path; /* appended to; NULL = the log's standard stream (stderr or stdout) */
    struct syslog_conf syslog; /* set: lines go to syslog, not to path */
    /* access log only: the share of requests NOT logged, in millionths (0 = log all: the
     * default, also when zeroed), and whether errors (status >= 400, or none: cut) are
     * sampled too or always logged */
    uint32_t skip_ppm;
    bool sample_errors;
};

/* An open log: the destination's index (logbuf.h) and the format; dest < 0 = off. */
struct log_target {
    int16_t dest;
    uint8_t format; /* enum log_format */
};

#endif
