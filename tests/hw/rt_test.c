/*
 * The render path (tutti_node_process) allocates, locks and enters the
 * kernel zero times.
 *
 * - Allocation and locks: this program defines malloc, calloc, realloc, free,
 *   aligned_alloc, posix_memalign and the pthread lock functions itself
 *   (symbol interposition), counting the calls made while a render is under
 *   way before passing them on to the C library.
 * - System calls: the render runs in a forked child under a seccomp filter
 *   that traps every system call (SIGSYS; the handler counts it) except the
 *   ones the check itself needs afterwards (a write on its result pipe,
 *   exit_group) and returning from the handler.
 * - The detectors are tested too: three deliberately bad render functions
 *   (one allocates, one locks a mutex, one makes a system call) must each be
 *   caught, so a broken detector cannot pass the node.
 * Where a detector cannot work on this build it says so and that part is
 * skipped: seccomp under qemu-user (qemu refuses filters) and under
 * ThreadSanitizer (its runtime maps memory as it meets new atomics),
 * interposed malloc under a sanitizer (which owns malloc). With neither available the test
 * exits 77 (skipped).
 */
#define _GNU_SOURCE
#include "hw/node.h"
#include "sim/sim.h"
#include "test.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||               \
    __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
/* ThreadSanitizer's runtime allocates (mmap) as it meets new atomics: the
 * system call count means nothing there. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif

static volatile int in_render;
static volatile long allocs, locks;

/* ------------------------------------------------------- interposition */
#if !SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n)
{
    if (in_render) allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    if (in_render) allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    if (in_render) allocs++;
    return __libc_realloc(p, n);
}
void free(void *p)
{
    if (in_render && p) allocs++;
    __libc_free(p);
}
void *aligned_alloc(size_t al, size_t n)
{
    if (in_render) allocs++;
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n)
{
    if (in_render) allocs++;
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

typedef int (*lockfn)(void *);
static lockfn real_mutex_lock, real_mutex_trylock, real_rd, real_wr, real_spin, real_sem;
#define LOCK_WRAP(name, type, real)                                                      \
    int name(type *x)                                                                    \
    {                                                                                    \
        if (in_render) locks++;                                                          \
        if (!real) real = (lockfn)dlsym(RTLD_NEXT, #name);                               \
        return real((void *)x);                                                          \
    }
LOCK_WRAP(pthread_mutex_lock, pthread_mutex_t, real_mutex_lock)
LOCK_WRAP(pthread_mutex_trylock, pthread_mutex_t, real_mutex_trylock)
LOCK_WRAP(pthread_rwlock_rdlock, pthread_rwlock_t, real_rd)
LOCK_WRAP(pthread_rwlock_wrlock, pthread_rwlock_t, real_wr)
LOCK_WRAP(pthread_spin_lock, pthread_spinlock_t, real_spin)
LOCK_WRAP(sem_wait, sem_t, real_sem)

static void resolve_locks(void)
{
    real_mutex_lock = (lockfn)dlsym(RTLD_NEXT, "pthread_mutex_lock");
    real_mutex_trylock = (lockfn)dlsym(RTLD_NEXT, "pthread_mutex_trylock");
    real_rd = (lockfn)dlsym(RTLD_NEXT, "pthread_rwlock_rdlock");
    real_wr = (lockfn)dlsym(RTLD_NEXT, "pthread_rwlock_wrlock");
    real_spin = (lockfn)dlsym(RTLD_NEXT, "pthread_spin_lock");
    real_sem = (lockfn)dlsym(RTLD_NEXT, "sem_wait");
}
#endif

/* ------------------------------------------------------------- seccomp */

static volatile long syscalls;
static volatile long first_nr = -1;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if (first_nr < 0) first_nr = si->si_syscall;
    syscalls++;
}

/* Trap every system call but rt_sigreturn (sigreturn), exit_group and a
 * write on `fd`. Returns false when the kernel (or qemu) refuses. */
static bool trap_syscalls(int fd)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#ifdef __NR_sigreturn
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sigreturn, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)fd, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return false;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

/* ------------------------------------------------------ what is tested */

typedef struct result {
    bool filtered; /* the seccomp filter was in place */
    long allocs, locks, syscalls, first_nr;
    uint64_t pulses, ticks;
} result;

typedef void (*render_fn)(tutti_node *n, const tutti_node_block *b);

static pthread_mutex_t bad_mutex = PTHREAD_MUTEX_INITIALIZER;
static void bad_alloc(tutti_node *n, const tutti_node_block *b)
{
    tutti_node_process(n, b);
    void *volatile p = malloc(64);
    free(p);
}
static void bad_lock(tutti_node *n, const tutti_node_block *b)
{
    pthread_mutex_lock(&bad_mutex);
    tutti_node_process(n, b);
    pthread_mutex_unlock(&bad_mutex);
}
static void bad_syscall(tutti_node *n, const tutti_node_block *b)
{
    tutti_node_process(n, b);
    syscall(SYS_getpid);
}

static tutti_sim *sim;
static tutti_node *node;

/* A node in a joined, locked session with a tempo change ahead. */
static void setup(void)
{
    tutti_sim_config sc;
    tutti_sim_config_init(&sc);
    sc.members = 2;
    sc.role = TUTTI_ROLE_CONDUCTOR;
    CHECK(tutti_sim_create(&sim, &sc) == 0);
    tutti_sim_start(sim, 1, 0);
    tutti_sim_start(sim, 2, 0);
    tutti_node_config nc;
    tutti_node_config_init(&nc);
    CHECK(tutti_node_create(&node, &nc) == 0);
    tutti_sim_run_until(sim, 3 * TUTTI_S);
    CHECK(tutti_member_propose_bpm(tutti_sim_member(sim, 1), 140) == 0);
    tutti_sim_run_until(sim, 3 * TUTTI_S + 200 * TUTTI_MS);
    tutti_node_poll(node, tutti_sim_member(sim, 2),
                    tutti_sim_node_clock(sim, 2, tutti_sim_now(sim)), 0);
}

static uint64_t frame; /* the device's frame counter, across the runs */

/* Renders `blocks` blocks of 16 frames, following the node's host clock. */
static result run_blocks(render_fn fn, int blocks, int pipefd, bool filter)
{
    result r = {0};
    float audio[2 * 16], analog[2 * 8];
    uint16_t din[16] = {0}, dout[16];
    tutti_time t0 = tutti_sim_now(sim);
    tutti_node_block b = {.frames = 16,
                          .sample_rate = 44100,
                          .audio_out = audio,
                          .audio_channels = 2,
                          .analog_out = analog,
                          .analog_channels = 2,
                          .analog_frames = 8,
                          .digital_in = din,
                          .digital_out = dout};
    /* Warm up (first-touch page faults are not system calls, but lazy
     * symbol binding would be worth excluding anyway). */
    for (int i = 0; i < 64; i++) {
        b.frames_elapsed = frame;
        b.host_now = tutti_sim_node_clock(sim, 2, t0 + (tutti_time)(frame * 1e9 / 44100));
        fn(node, &b);
        frame += 16;
    }
    if (filter && !TSAN) r.filtered = trap_syscalls(pipefd);
    for (int i = 0; i < blocks; i++) {
        b.frames_elapsed = frame;
        b.host_now = tutti_sim_node_clock(sim, 2, t0 + (tutti_time)(frame * 1e9 / 44100));
        din[0] = (uint16_t)((i / 2000) % 2 << 3); /* the footswitch, now and then */
        in_render = 1;
        fn(node, &b);
        in_render = 0;
        frame += 16;
    }
    r.allocs = allocs;
    r.locks = locks;
    r.syscalls = syscalls;
    r.first_nr = first_nr;
    tutti_node_status st;
    tutti_node_status_get(node, &st);
    r.pulses = st.pulses;
    r.ticks = st.midi_ticks;
    return r;
}

/* Runs fn in a forked child under the detectors; the child's result. */
static result in_child(render_fn fn, int blocks)
{
    int p[2];
    result r = {0};
    if (pipe(p)) return r;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, NULL);
        result c = run_blocks(fn, blocks, p[1], true);
        ssize_t w = write(p[1], &c, sizeof c);
        syscall(SYS_exit_group, w == (ssize_t)sizeof c ? 0 : 1);
    }
    close(p[1]);
    ssize_t got = read(p[0], &r, sizeof r);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(got == (ssize_t)sizeof r);
    return r;
}

static bool seccomp_ok, interposed = !SANITIZED;

static void detectors_catch_bad_renders(void)
{
    result a = in_child(bad_alloc, 100);
    result l = in_child(bad_lock, 100);
    result s = in_child(bad_syscall, 100);
    seccomp_ok = s.filtered;
    fprintf(stderr,
            "controls: allocating render %ld allocations; locking render %ld locks; "
            "syscall render %ld system calls (filter %s)\n",
            a.allocs, l.locks, s.syscalls, s.filtered ? "on" : "refused here");
    if (interposed) {
        CHECK(a.allocs >= 200);
        CHECK(l.locks >= 100);
    }
    if (seccomp_ok) CHECK(s.syscalls >= 100);
}

static void render_path_is_clean(void)
{
    result r = in_child(tutti_node_process, 20000); /* 7.3 s of audio */
    fprintf(stderr,
            "tutti_node_process, 20000 blocks of 16 frames: %ld allocations, %ld locks, "
            "%ld system calls (first: %ld; filter %s); %llu pulses, %llu midi ticks\n",
            r.allocs, r.locks, r.syscalls, r.first_nr, r.filtered ? "on" : "refused here",
            (unsigned long long)r.pulses, (unsigned long long)r.ticks);
    /* It rendered: pulses and MIDI clock came out (about 15 beats). */
    CHECK(r.pulses >= 10);
    CHECK(r.ticks >= 240);
    if (interposed) {
        CHECK_EQ_I64(r.allocs, 0);
        CHECK_EQ_I64(r.locks, 0);
    }
    if (seccomp_ok) CHECK_EQ_I64(r.syscalls, 0);
}

int main(void)
{
#if !SANITIZED
    resolve_locks();
#endif
    setup();
    RUN(detectors_catch_bad_renders);
    RUN(render_path_is_clean);
    if (!interposed)
        fprintf(stderr, "allocation and lock counting: not on a sanitizer build\n");
    if (!seccomp_ok)
        fprintf(stderr, "system call trapping: seccomp refused here (qemu-user?)\n");
    tutti_node_destroy(node);
    tutti_sim_destroy(sim);
    if (!interposed && !seccomp_ok) return 77;
    TEST_END();
}
