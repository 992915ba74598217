/* deny.c — see deny.h. */
#include "http/filters/deny.h"

#include <stdio.h>

#include "config/config-t.h"
#include "http/error_page.h"
#include "http/msg.h"

void filter_count(const struct http_txn *t, enum http_filter_event ev)
{
    if (t->lc && t->lc->st.ctr)
        CTR_ADD(t->lc->st.ctr[t->worker].http_filter_events[ev], 1);
}

enum filter_verdict filter_deny(struct http_txn *t, unsigned status, const char *detail,
                                enum http_filter_event ev)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%u %s: %s\n", status, http_reason(status), detail);
    filter_count(t, ev);
    t->filter_detail = detail;
    if (txn_answer(t, status, "text/plain; charset=utf-8", body, (size_t)n) < 0 ||
        error_page_apply(t, status, detail) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}
