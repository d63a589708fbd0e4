/*
 * The server's member as its LAN's Link bridge (design notes in linkhost.h).
 */
#include "linkhost.h"

#include "proxy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define logf_ tutti__proxy_logf

static struct linkhost {
    pthread_mutex_t mu; /* everything below; the thread takes it per step */
    bool enabled;
    tutti_net *net; /* the member attached (not owned) */
    bool running;   /* the thread exists */
    bool stop;      /* the thread is asked to end */
    pthread_cond_t wake;
    pthread_t thread;
    tutti_bridge *bridge;
    tutti_bridge_status st; /* published after every step */
    char error[160];
    FILE *trace; /* TUTTI_LINK_TRACE: every bridge's steps, for as long as the server runs */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

#ifdef TUTTI_HAVE_LINK
enum { HAVE_LINK = 1 };

/* The thread sleeps on CLOCK_MONOTONIC, tutti_net_now's clock. */
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static void wake_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&L.wake, &ca);
    pthread_condattr_destroy(&ca);
}

static void *bridge_thread(void *arg)
{
    tutti_bridge *b = arg; /* destroyed only after this thread is joined */
    tutti_bridge_status st;
    pthread_mutex_lock(&L.mu);
    while (!L.stop) {
        /* the step waits for the member's loop at times: not under L.mu,
         * which the status readers take */
        pthread_mutex_unlock(&L.mu);
        tutti_time next = tutti_bridge_step(b);
        tutti_bridge_status_get(b, &st);
        pthread_mutex_lock(&L.mu);
        L.st = st;
        /* sleep until the bridge's next step (CLOCK_MONOTONIC, the clock of
         * tutti_net_now and of the condition), or until told to stop */
        struct timespec ts = {(time_t)(next / TUTTI_S), (long)(next % TUTTI_S)};
        while (!L.stop && pthread_cond_timedwait(&L.wake, &L.mu, &ts) == 0) {}
    }
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

/* Under L.mu: a bridge on the attached member, if the setting says so. */
static int start_locked(char *why, size_t cap)
{
    if (L.running || !L.enabled || !L.net) return 0;
    pthread_once(&wake_once, wake_init);
    tutti_bridge_config cfg;
    tutti_bridge_config_init(&cfg);
    cfg.trace = L.trace;
    int rc = tutti_bridge_create(&L.bridge, L.net, &cfg);
    if (rc) {
        snprintf(L.error, sizeof L.error, "Ableton Link could not start: %s",
                 tutti_strerror(rc));
        if (why) snprintf(why, cap, "%s", L.error);
        logf_("tutti: link: %s", L.error);
        return rc;
    }
    L.stop = false;
    memset(&L.st, 0, sizeof L.st);
    if (pthread_create(&L.thread, NULL, bridge_thread, L.bridge) != 0) {
        tutti_bridge_destroy(L.bridge);
        L.bridge = NULL;
        snprintf(L.error, sizeof L.error, "no thread for the Link bridge");
        if (why) snprintf(why, cap, "%s", L.error);
        return TUTTI_ENOMEM;
    }
    L.running = true;
    L.error[0] = 0;
    logf_("tutti: link: this server's member is a Link bridge on its LAN");
    return 0;
}

/* Takes L.mu and gives it back: the thread needs it to end. */
static void stop_locked(void)
{
    if (!L.running) return;
    L.stop = true;
    pthread_cond_signal(&L.wake);
    pthread_mutex_unlock(&L.mu);
    pthread_join(L.thread, NULL);
    pthread_mutex_lock(&L.mu);
    tutti_bridge_destroy(L.bridge);
    L.bridge = NULL;
    L.running = false;
    logf_("tutti: link: the Link bridge stopped");
}

#else
enum { HAVE_LINK = 0 };

static int start_locked(char *why, size_t cap)
{
    (void)why, (void)cap;
    return 0;
}

static void stop_locked(void) {}
#endif

void tutti__linkhost_init(void)
{
    const char *t = getenv("TUTTI_LINK_TRACE");
    if (HAVE_LINK && t && *t) {
        /* a line a step, each written at once: the server may end by a
         * signal; the bridge's thread writes it, never the audio thread */
        if ((L.trace = fopen(t, "w")))
            setvbuf(L.trace, NULL, _IOLBF, 0);
        else
            logf_("tutti: TUTTI_LINK_TRACE: cannot write %s", t);
    }
    const char *e = getenv("TUTTI_LINK");
    if (e && *e && strcmp(e, "0") != 0) {
        char why[160];
        if (tutti__linkhost_enable(true, why, sizeof why)) logf_("tutti: TUTTI_LINK: %s", why);
    }
}

int tutti__linkhost_enable(bool on, char *why, size_t cap)
{
    if (on && !HAVE_LINK) {
        snprintf(why, cap, "this plugin was built without Ableton Link (ableton-link-dev)");
        return TUTTI_EINVAL;
    }
    pthread_mutex_lock(&L.mu);
    L.enabled = on;
    int rc = 0;
    if (on)
        rc = start_locked(why, cap);
    else
        stop_locked();
    pthread_mutex_unlock(&L.mu);
    return rc;
}

void tutti__linkhost_attach(tutti_net *n)
{
    pthread_mutex_lock(&L.mu);
    stop_locked();
    L.net = n;
    start_locked(NULL, 0);
    pthread_mutex_unlock(&L.mu);
}

void tutti__linkhost_detach(void)
{
    pthread_mutex_lock(&L.mu);
    stop_locked();
    L.net = NULL;
    pthread_mutex_unlock(&L.mu);
}

void tutti__linkhost_status_get(tutti__linkhost_status *st)
{
    memset(st, 0, sizeof *st);
    st->available = HAVE_LINK;
    pthread_mutex_lock(&L.mu);
    st->enabled = L.enabled;
    st->running = L.running;
    if (L.running) st->b = L.st;
    snprintf(st->error, sizeof st->error, "%s", L.error);
    pthread_mutex_unlock(&L.mu);
}

const char *tutti__linkhost_state_name(const tutti__linkhost_status *st)
{
    if (!st->available) return "unavailable";
    if (!st->enabled) return "off";
    if (!st->running) return st->error[0] ? "failed" : "waiting";
    if (!st->b.joined) return "joining";
    return st->b.active ? "active" : "standby";
}
