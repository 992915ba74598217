/* logbuf-t.h — types of the buffered logs (core/logbuf.h): a log's configuration and where
 * a listener's lines go once its destination is open. Types only.
 */
#ifndef STRATA_CORE_LOGBUF_T_H
#define STRATA_CORE_LOGBUF_T_H

#include <stdint.h>

enum log_format { LOG_FORMAT_OFF, LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

/* A `log` or `access_log` section of the configuration. */
struct log_conf {
    enum log_format format;
    char *path; /* appended to; NULL = the log's standard stream (stderr or stdout) */
};

/* An open log: the destination's index (logbuf.h) and the format; dest < 0 = off. */
struct log_target {
    int16_t dest;
    uint8_t format; /* enum log_format */
};

#endif
