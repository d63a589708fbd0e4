/*
 * Holding timed bundles back until shortly before their time (see hold.h).
 */
#include "hold.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct held {
    struct held *next;
    tutti_time at, release_at;
    uint64_t ctx;
    size_t len;
    uint8_t data[];
} held;

struct tutti__hold {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    held *head; /* by (at, seq) */
    size_t bytes, max_bytes, count;
    bool stop;
    tutti__hold_release_fn fn;
    void *arg;
};

static tutti_time wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((tutti_time)ts.tv_sec + 2208988800LL) * TUTTI_S + ts.tv_nsec;
}

/* The head, taken off, when it is due or when `all` (h->mu held). */
static held *take_due(tutti__hold *h, bool all, tutti_time now)
{
    held *e = h->head;
    if (!e || (!all && e->release_at > now)) return NULL;
    h->head = e->next;
    h->bytes -= e->len;
    h->count--;
    return e;
}

static void *hold_main(void *arg)
{
    tutti__hold *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        tutti_time now = wall_now();
        held *e = take_due(h, h->stop, now);
        if (e) {
            /* released outside the lock: a push never waits for the server */
            pthread_mutex_unlock(&h->mu);
            h->fn(h->arg, e->data, e->len, e->at, e->ctx);
            free(e);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        if (h->stop) break;
        if (!h->head) {
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        tutti_time until = h->head->release_at - 2208988800LL * TUTTI_S;
        struct timespec ts = {.tv_sec = (time_t)(until / TUTTI_S),
                              .tv_nsec = (long)(until % TUTTI_S)};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int tutti__hold_create(tutti__hold **out, tutti__hold_release_fn fn, void *arg,
                       size_t max_bytes)
{
    *out = NULL;
    tutti__hold *h = calloc(1, sizeof *h);
    if (!h) return TUTTI_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->fn = fn;
    h->arg = arg;
    h->max_bytes = max_bytes;
    if (pthread_create(&h->thread, NULL, hold_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return TUTTI_ENOMEM;
    }
    *out = h;
    return 0;
}

int tutti__hold_push(tutti__hold *h, const uint8_t *p, size_t len, tutti_time at,
                     tutti_time release_at, uint64_t ctx)
{
    held *e = malloc(sizeof *e + len);
    if (!e) return TUTTI_ENOMEM;
    memcpy(e->data, p, len);
    e->len = len;
    e->at = at;
    e->ctx = ctx;
    pthread_mutex_lock(&h->mu);
    if (h->stop || h->bytes + len > h->max_bytes) {
        pthread_mutex_unlock(&h->mu);
        free(e);
        return TUTTI_EFULL;
    }
    /* in order of time, after every one with the same time (so ties keep
     * the order they came in); those before it are released no later than
     * it (the head gates the rest) */
    held **pp = &h->head;
    while (*pp && (*pp)->at <= at)
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    e->release_at = release_at;
    for (held *q = h->head; q != e; q = q->next)
        if (q->release_at > release_at) q->release_at = release_at;
    h->bytes += len;
    h->count++;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_signal(&h->cv);
    return 0;
}

size_t tutti__hold_count(tutti__hold *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->count;
    pthread_mutex_unlock(&h->mu);
    return n;
}

void tutti__hold_destroy(tutti__hold *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_signal(&h->cv);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
