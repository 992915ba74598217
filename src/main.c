/* main.c — the command line, signals and the process lifecycle; no proxy logic.
 *
 * Exit codes: 0 success, 1 configuration error, 2 usage error, 3 runtime failure
 * (cannot bind, cannot start threads).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/schema.h"
#include "core/log.h"
#include "core/time.h"
#include "core/version.h"
#include "demo/demo.h"
#include "ev/worker.h"
#include "proxy/control.h"
#include "proxy/proxy.h"
#include "proxy/reload_cli.h"
#include "proxy/sd_notify.h"
#include "proxy/upgrade.h"

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

#define DEMO_DEFAULT_BASE 7000
#define DEFAULT_CONFIG CLI_DEFAULT_CONFIG

static void usage(FILE *out)
{
    cli_usage(out); /* the verb table, shared with strata(8): cli/commands.c */
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Each proxied connection costs two descriptors: take what the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct config *load(const char *path, const char *yaml)
{
    struct config_errors errs = {0};
    struct config *cfg = yaml ? config_load_string(path, yaml, cpu_count(), &errs)
                              : config_load_file(path, cpu_count(), &errs);
    if (!cfg) {
        fputs(errs.text ? errs.text : "configuration error\n", stderr);
        fprintf(stderr, "%s: %u error%s\n", path, errs.count, errs.count == 1 ? "" : "s");
    }
    config_errors_free(&errs);
    return cfg;
}

/* Waits for a stop signal (SIGHUP: a reload, on the control thread), then drains.
 * Returns when every worker has exited. */
static void wait_and_drain(struct worker *ws, unsigned n, struct control *ctl,
                           const sigset_t *sigs)
{
    int sig;
    for (;;) {
        if (sigwait(sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_info("SIGHUP: reloading the configuration");
            control_request_reload(ctl);
            continue;
        }
        break;
    }
    uint32_t drain_ms = atomic_load(&ctl->drain_ms);
    uint64_t deadline = mono_ms() + drain_ms;
    sd_notify_stopping();
    for (unsigned i = 0; i < n; i++)
        worker_command(&ws[i], WORKER_DRAIN);
    /* The line says that nothing new is taken any more: written once every worker
     * has stopped taking new connections and flows (a worker does so at its next wake). */
    if (!workers_wait_applied(ws, n, WORKER_DRAIN, 1000))
        log_warn("a worker has not stopped taking new connections within 1 s");
    log_info("%s: stopping; draining open connections for up to %u ms", strsignal(sig),
             drain_ms);
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    while (workers_running(ws, n) > 0 && mono_ms() < deadline) {
        siginfo_t info;
        if (sigtimedwait(sigs, &info, &tick) > 0 && info.si_signo != SIGHUP) {
            log_warn("second signal: closing every connection now");
            break;
        }
    }
    if (workers_running(ws, n) > 0)
        log_info("drain period over: closing the remaining connections");
    for (unsigned i = 0; i < n; i++)
        worker_command(&ws[i], WORKER_STOP);
}

static int run(struct config *cfg, void (*on_ready)(void *), void *arg)
{
    char err[512];
    unsigned n = cfg->workers;
    struct worker *ws = calloc(n, sizeof(*ws));
    struct control ctl;
    int rc = EXIT_RUNTIME;
    if (!ws) {
        log_err("out of memory");
        return EXIT_RUNTIME;
    }
    raise_fd_limit();
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads inherit: only main takes them */
    signal(SIGPIPE, SIG_IGN);                /* splice(2) to a closed socket raises it */

    /* a binary upgrade: the listening sockets of the process on upgrade_socket */
    int upgrade = upgrade_takeover(cfg, err, sizeof(err));
    if (upgrade == -1 || proxy_init(ws, n, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        upgrade_abandon(upgrade);
        free(ws);
        return EXIT_RUNTIME;
    }
    if (control_start(&ctl, cfg, ws, n, err, sizeof(err)) < 0) {
        log_err("%s", err);
        upgrade_abandon(upgrade);
        proxy_join(ws, n);
        free(ws);
        return EXIT_RUNTIME;
    }
    if (workers_start(ws, n) == 0) {
        if (upgrade >= 0)
            upgrade_finish(upgrade);
        log_info("strata %s ready: %u workers, %u listeners, %u backends (%s)", STRATA_VERSION, n,
                 cfg->nlisteners, cfg->nbackends, cfg->file);
        if (on_ready)
            on_ready(arg);
        sd_notify_ready(cfg);
        wait_and_drain(ws, n, &ctl, &sigs);
        rc = EXIT_OK;
    } else {
        upgrade_abandon(upgrade);
        for (unsigned i = 0; i < n; i++)
            worker_command(&ws[i], WORKER_STOP);
    }
    proxy_join(ws, n);
    control_stop(&ctl);
    free(ws);
    log_info("stopped");
    return rc;
}

static int cmd_check(const char *path)
{
    struct config *cfg = load(path, NULL);
    if (!cfg)
        return EXIT_CONFIG;
    printf("%s: configuration is valid (%u listener%s, %u backend%s)\n", path, cfg->nlisteners,
           cfg->nlisteners == 1 ? "" : "s", cfg->nbackends, cfg->nbackends == 1 ? "" : "s");
    config_unref(cfg);
    return EXIT_OK;
}

static int cmd_run(const char *path)
{
    struct config *cfg = load(path, NULL);
    if (!cfg)
        return EXIT_CONFIG;
    int rc = run(cfg, NULL, NULL);
    config_unref(cfg);
    return rc;
}

static void demo_ready(void *arg)
{
    demo_print_help(*(unsigned *)arg);
}

static int cmd_demo(const char *base_text)
{
    char *end;
    unsigned long base = base_text ? strtoul(base_text, &end, 10) : DEMO_DEFAULT_BASE;
    if (base_text && (*end || base < 1 || base > 65535 - 90)) {
        fprintf(stderr, "strata demo: BASE_PORT must be a number from 1 to 65445\n");
        return EXIT_USAGE;
    }
    char err[256], yaml[6144];
    unsigned b = (unsigned)base;
    const char *cert_dir = demo_tls_dir(err, sizeof(err));
    if (!cert_dir) {
        log_err("%s", err);
        return EXIT_RUNTIME;
    }
    if (demo_servers_start(b, err, sizeof(err)) < 0) {
        log_err("%s", err);
        demo_tls_remove();
        return EXIT_RUNTIME;
    }
    demo_config(b, cert_dir, yaml, sizeof(yaml));
    struct config *cfg = load("<demo>", yaml);
    int rc = EXIT_CONFIG;
    if (cfg) {
        rc = run(cfg, demo_ready, &b);
        config_unref(cfg);
    }
    demo_servers_stop();
    demo_tls_remove();
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "demo";
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-v") == 0) {
        printf("strata %s\n", STRATA_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "config-reference") == 0 && argc == 2) {
        config_reference_print(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "man-page") == 0 && argc == 2) {
        man_page_print(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "demo") == 0 && argc <= 3)
        return cmd_demo(argc == 3 ? argv[2] : NULL);
    if (strcmp(cmd, "check") == 0 && argc == 3)
        return cmd_check(argv[2]);
    if (strcmp(cmd, "run") == 0 && argc == 3)
        return cmd_run(argv[2]);
    if (strcmp(cmd, "reload") == 0 && (argc == 2 || (argc == 4 && strcmp(argv[2], "-c") == 0))) {
        struct config *cfg = load(argc == 4 ? argv[3] : DEFAULT_CONFIG, NULL);
        if (!cfg)
            return EXIT_CONFIG;
        int rc = reload_cli(cfg, stdout, stderr);
        config_unref(cfg);
        return rc;
    }
    if (strcmp(cmd, "explain") == 0)
        return explain_main(argc - 2, argv + 2);
    if (strcmp(cmd, "diff") == 0)
        return diff_main(argc - 2, argv + 2);
    usage(stderr);
    return EXIT_USAGE;
}
