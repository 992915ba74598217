/* demo.h — the built-in demonstration: three small TCP servers in a thread of their
 * own, and the configuration that puts a Strata listener in front of them. */
#ifndef STRATA_DEMO_DEMO_H
#define STRATA_DEMO_DEMO_H

#include <stddef.h>

#define DEMO_SERVERS 3

/* Starts the demo servers on base+1 .. base+DEMO_SERVERS. Returns 0 or -1 (err filled). */
int demo_servers_start(unsigned base, char *err, size_t errlen);
void demo_servers_stop(void);

/* Writes the demo's YAML configuration for `base` into buf. */
void demo_config(unsigned base, char *buf, size_t len);

/* Prints what to type to see the demo work. */
void demo_print_help(unsigned base);

#endif
