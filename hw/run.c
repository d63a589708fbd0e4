/* The node's loop side on real sockets; see run.h. */
#define _GNU_SOURCE
#include "run.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct tutti_node_runner {
    tutti_node *node;
    tutti_net *net;
    tutti_node_run_config cfg;
    pthread_t thread;
    atomic_bool stop;
};

static void poll_on_loop(void *arg, void *engine)
{
    tutti_node_runner *r = arg;
    tutti_time d = r->cfg.host_minus_local ? r->cfg.host_minus_local() : 0;
    tutti_node_poll(r->node, engine, tutti_net_now(), d);
}

static void *poll_thread(void *arg)
{
    tutti_node_runner *r = arg;
    tutti_node_midi m[256];
    struct timespec ts = {0, (long)r->cfg.poll_every};
    while (!atomic_load(&r->stop)) {
        if (tutti_net_call(r->net, poll_on_loop, r) != 0) break;
        if (r->cfg.midi_write) {
            uint32_t n;
            while ((n = tutti_node_midi_read(r->node, m, 256)) > 0)
                r->cfg.midi_write(r->cfg.midi_ctx, m, n);
        }
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int tutti_node_run_start(tutti_node_runner **out, tutti_node *node,
                         const tutti_node_run_config *cfg)
{
    tutti_node_runner *r = calloc(1, sizeof *r);
    if (!r) return TUTTI_ENOMEM;
    r->node = node;
    r->cfg = *cfg;
    if (!r->cfg.poll_every) r->cfg.poll_every = 2 * TUTTI_MS;
    tutti_member_callbacks cb = {0};
    int rc = tutti_net_member_start(&r->net, cfg->member, &cb, cfg->hub_url, NULL);
    if (rc) {
        free(r);
        return rc;
    }
    if (pthread_create(&r->thread, NULL, poll_thread, r)) {
        tutti_net_stop(r->net);
        free(r);
        return TUTTI_ENOMEM;
    }
    *out = r;
    return 0;
}

void tutti_node_run_stop(tutti_node_runner *r)
{
    if (!r) return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    tutti_net_leave(r->net, TUTTI_S);
    tutti_net_stop(r->net);
    free(r);
}

tutti_net *tutti_node_run_net(tutti_node_runner *r)
{
    return r->net;
}

typedef struct status_call {
    tutti_node *node;
    tutti_node_status *st;
} status_call;

static void status_on_loop(void *arg, void *engine)
{
    (void)engine;
    status_call *c = arg;
    tutti_node_status_get(c->node, c->st);
}

int tutti_node_run_status(tutti_node_runner *r, tutti_node_status *st)
{
    status_call c = {r->node, st};
    return tutti_net_call(r->net, status_on_loop, &c);
}
