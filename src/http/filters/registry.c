/* registry.c — the built-in filters by configuration key. The sticky filter is not
 * listed: the session adds it for backends with sticky sessions, it is not configured on
 * routes. */
#include <string.h>

#include "core/bug.h"
#include "http/filter.h"

static const struct filter_ops *const registry[] = {
    &filter_request_headers, &filter_response_headers, &filter_path_rewrite, &filter_redirect,
    &filter_respond,         &filter_forwarded,        &filter_request_id,   &filter_traceparent,
};

const struct filter_ops *filter_ops_by_name(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(registry); i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}
