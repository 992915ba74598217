/* demo.h — the built-in demonstration: three small TCP servers and three small HTTP/1.1
 * servers in a thread of their own, the configuration that puts Strata in front of them,
 * and a little traffic of its own for the dashboard. Port plan for BASE: the listener
 * BASE, TCP servers BASE+1..3, the traffic's TCP listener BASE+4, a server nobody listens
 * on BASE+9, web servers BASE+11..13, HTTPS BASE+43, HTTP BASE+80, the traffic's HTTP
 * listener BASE+81, admin (metrics, dashboard) BASE+90. */
#ifndef STRATA_DEMO_DEMO_H
#define STRATA_DEMO_DEMO_H

#include <stddef.h>

#define DEMO_SERVERS 3

#define DEMO_WEB_SERVERS 3
#define DEMO_DB_OFFSET 4     /* the TCP listener of the demo's own traffic */
#define DEMO_LEGACY_OFFSET 9 /* nothing listens there: the shop's failing route */

/* The HTTP listener the demo's own traffic goes to. */
unsigned demo_shop_port(unsigned base);

struct ev_loop;

/* Starts the demo TCP servers on base+1 .. base+DEMO_SERVERS and the web servers (see
 * demo_http_port) on one thread. Returns 0, or -1 (err filled, nothing left open: it may
 * be called again, e.g. with another base). */
int demo_servers_start(unsigned base, char *err, size_t errlen);
/* Stops the thread and closes every demo socket. Only after a successful start. */
void demo_servers_stop(void);

/* The port of demo web server n (1..DEMO_WEB_SERVERS): base + 10 + n. Each answers any
 * request with 200 "hello from demo web N: METHOD PATH\n", and GET /healthz with "ok". */
unsigned demo_http_port(unsigned base, unsigned n);

/* demo.c's side of demo_http.c: the web servers on the demo loop. start returns 0 or -1
 * (err filled, nothing left open); stop closes listeners and connections and runs on the
 * loop's thread or once it has stopped. */
int demo_http_start(struct ev_loop *loop, unsigned base, char *err, size_t errlen);
void demo_http_stop(struct ev_loop *loop);

/* Makes the demo's TLS certificate (cert.pem, key.pem) in a new temporary directory and
 * returns its path, or NULL with err filled. demo_tls_remove deletes it again. */
const char *demo_tls_dir(char *err, size_t errlen);
void demo_tls_remove(void);

/* Writes the demo's YAML configuration for `base` into buf; the HTTPS listener's
 * certificate is in cert_dir (see demo_tls_dir). */
void demo_config(unsigned base, const char *cert_dir, char *buf, size_t len);

/* Sends a little steady traffic (demo_traffic.c) to the demo's listeners from a thread of
 * its own, so that the dashboard shows some at once. start: 0 or -1; stop waits for the
 * thread (at most about a second) and does nothing when it did not start. */
int demo_traffic_start(unsigned base);
void demo_traffic_stop(void);

/* Prints what to type to see the demo work. */
void demo_print_help(unsigned base);

#endif
