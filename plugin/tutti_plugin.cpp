/*
 * TuttiProxy: the scsynth plugin that loads tutti into the server.
 *
 * This file is the only one that knows scsynth. It gives the proxy (proxy.h)
 * the three things it needs from the server: a way to inject packets, the
 * moment the server is ready for that, and a way to read back the context of
 * a reply.
 *
 * Design notes
 * ------------
 * - Load and unload. scsynth calls `load` while it builds its World, before
 *   any socket is open; `load` starts the proxy's one loop thread (as
 *   DiskIO_UGens starts its disk thread). scsynth calls `unload` from
 *   World_Cleanup, which stops and joins the thread. The library is linked
 *   with -z nodelete: World_Cleanup unloads plugins before it stops the audio
 *   driver, so a reply already on its way can still call reply_func after
 *   `unload`; the code stays mapped and the proxy drops such replies.
 * - Finding the World. A plugin is never handed the World at load time (it
 *   does not exist yet), the SDK offers no global for it, and libscsynth
 *   exports none. What does receive it is a plugin command: /cmd tutti_attach
 *   stores it. The proxy sends that command itself, to the server's own UDP
 *   port or TCP listener, which it finds among this process's sockets once
 *   the server has opened them; an embedding host without sockets can send
 *   the same command with World_SendPacket. The handler runs on the audio
 *   thread and only stores a pointer (a lock-free atomic).
 * - Injection. World_SendPacketWithContext (exported by libscsynth; 3.6 has
 *   it already) queues a packet exactly as the server's own sockets do and keeps a
 *   context pointer in the packet's ReplyAddress. It is looked up with dlsym
 *   so that a server without it gets a clear message instead of a failed
 *   dlopen.
 * - Reading the context back. The SDK declares ReplyAddress opaque; the
 *   context is its mReplyData field, which immediately follows mReplyFunc
 *   (common/SC_ReplyImpl.hpp, unchanged since 2013), after a
 *   boost::asio::ip::address whose size this file must not guess. So the
 *   offset is measured: before the proxy opens its port, the shim injects a
 *   /status with a known context and, in the reply, finds the word holding
 *   reply_func followed by that context. Afterwards every reply is checked
 *   (the function word at the measured offset must be reply_func) before its
 *   context is trusted; a reply that fails the check is counted, not routed.
 * - Threads. scsynth 3.13 calls reply functions only on its non-real-time
 *   thread (sequenced commands' NRT stages, and the node/trigger messages the
 *   NRT thread performs); reply_func copies into the proxy's lock-free ring
 *   and wakes the loop, and never touches a socket.
 * - Contexts are 64-bit client names (proxy.h). On a 64-bit server the
 *   ReplyAddress's pointer-sized word holds one; on a 32-bit server (Bela's
 *   scsynth) it holds a handle into a table of contexts (ctxmap.h), and a
 *   reply whose handle went stale is counted as unroutable.
 * - TuttiGuard, the one UGen here, is the guard's node (guard.h): two of
 *   them stand around each part's group, the one before copies the hardware
 *   outputs, the one after limits what the part added. Both run on the audio
 *   thread; they find each other through a table indexed by slot that only
 *   the audio thread touches. The copy's memory comes from RTAlloc in the
 *   constructor (a failed RTAlloc leaves the guard a pass-through, counted
 *   as nothing limited, never a crash).
 */
#include <SC_PlugIn.h>
#include <SC_Reply.h>

#include "guard.h"
#include "beat.h"
#include "ctxmap.h"
#include "proxy.h"
#include "tutti/tutti.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <time.h>

static_assert(sizeof(void *) == 8 || sizeof(void *) == 4, "a 32- or 64-bit server");
constexpr bool kWideWords = sizeof(void *) == 8; /* a context fits in a word */

static InterfaceTable *ft;

void tutti__ugens_load(InterfaceTable *inTable); /* ugens.cpp */

namespace
{

using SendPacketFn = bool (*)(World *, int, char *, ReplyFunc, void *);

std::atomic<World *> g_world{nullptr};
static_assert(std::atomic<World *>::is_always_lock_free,
              "the audio thread stores the World");

/* Offset of mReplyData in ReplyAddress; 0 until measured. */
std::atomic<size_t> g_ctx_offset{0};
std::atomic<uint64_t> g_unroutable{0};
SendPacketFn g_send;
uint64_t g_last_probe_ns;

constexpr uint64_t kProbeCtx = TUTTI_PROXY_CTX_HOST | 0x7475747469ull;
constexpr size_t kProbeWords = 16; /* ReplyAddress is about 9 words on x86-64 */

/* The word scsynth keeps for a context, and back (see ctxmap.h). put runs on
 * the proxy's loop thread (the only one that injects), get on any. */
uintptr_t ctx_word(uint64_t ctx)
{
    if (kWideWords) return static_cast<uintptr_t>(ctx);
    return tutti__ctxmap_put(tutti__ctxmap_shared(), ctx);
}

bool word_ctx(uintptr_t word, uint64_t *ctx)
{
    if (kWideWords) {
        *ctx = word;
        return true;
    }
    return tutti__ctxmap_get(tutti__ctxmap_shared(), static_cast<uint32_t>(word), ctx);
}

/* The probe's word (its context is pinned in the table: it never changes). */
uintptr_t probe_word()
{
    static const uintptr_t w = ctx_word(kProbeCtx);
    return w;
}

uint64_t mono_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u +
           static_cast<uint64_t>(ts.tv_nsec);
}

void reply_func(ReplyAddress *addr, char *buf, int size);

uintptr_t word_at(const unsigned char *base, size_t off)
{
    uintptr_t w;
    std::memcpy(&w, base + off, sizeof w);
    return w;
}

/* The context of a reply, or false when the ReplyAddress is not one of ours
 * as measured. The first probe reply measures the offset; until then every
 * reply is unreadable (and none but probes are sent). */
bool reply_context(const ReplyAddress *addr, uint64_t *ctx)
{
    const auto *b = reinterpret_cast<const unsigned char *>(addr);
    const auto self = reinterpret_cast<uintptr_t>(&reply_func);
    size_t off = g_ctx_offset.load(std::memory_order_acquire);
    if (!off) {
        for (size_t i = 1; i + 1 < kProbeWords; i++) {
            size_t at = i * sizeof(uintptr_t);
            if (word_at(b, at) == self && word_at(b, at + sizeof(uintptr_t)) == probe_word()) {
                g_ctx_offset.store(at + sizeof(uintptr_t), std::memory_order_release);
                *ctx = kProbeCtx;
                return true;
            }
        }
        return false;
    }
    if (word_at(b, off - sizeof(uintptr_t)) != self) return false;
    return word_ctx(word_at(b, off), ctx);
}

/* Called by scsynth on its non-real-time thread. */
void reply_func(ReplyAddress *addr, char *buf, int size)
{
    uint64_t ctx;
    if (!addr || size <= 0) return;
    if (!reply_context(addr, &ctx)) {
        g_unroutable.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (ctx == kProbeCtx) return;
    tutti__proxy_reply(ctx, buf, static_cast<size_t>(size));
}

/* /cmd tutti_attach, on the audio thread: store the World, nothing else. */
void attach_cmd(World *world, void *, sc_msg_iter *, void *)
{
    World *none = nullptr;
    g_world.compare_exchange_strong(none, world, std::memory_order_release);
}

/* jack_get_cycle_times, when TUTTI_UGEN_CLOCK=jack and the server runs on
 * JACK2 (which reads the engine's clock from shared memory and ignores the
 * client argument; the plugin has no client of its own). */
using CycleTimesFn = int (*)(const void *, uint32_t *, uint64_t *, uint64_t *, float *);
CycleTimesFn g_cycle_times;

/* The current JACK cycle's times for the UGens (beat.h,
 * tutti__beat_jack_cycles), on the audio thread. */
int jack_cycles(uint64_t *cycle_us, uint64_t *next_us)
{
    uint32_t frames;
    float period_us;
    return g_cycle_times(nullptr, &frames, cycle_us, next_us, &period_us);
}

/* /cmd tutti_anchor NTP_HI NTP_LO, on the audio thread, in the block its
 * bundle's time falls in: that block's start time, for the UGens (beat.h). */
void anchor_cmd(World *world, void *, sc_msg_iter *args, void *)
{
    uint32_t hi = static_cast<uint32_t>(args->geti());
    uint32_t lo = static_cast<uint32_t>(args->geti());
    int64_t t = tutti_time_from_ntp(static_cast<uint64_t>(hi) << 32 | lo);
    if (g_cycle_times) {
        uint32_t frames;
        uint64_t cycle_us, next_us;
        float period_us;
        if (g_cycle_times(nullptr, &frames, &cycle_us, &next_us, &period_us) == 0)
            tutti__beat_anchor_jack_rt(static_cast<uint32_t>(world->mBufCounter),
                                       cycle_us, next_us, t, world->mSampleOffset,
                                       world->mSubsampleOffset, world->mSampleRate,
                                       world->mBufLength);
        return;
    }
    tutti__beat_anchor_rt(static_cast<uint32_t>(world->mBufCounter), t,
                          world->mSampleOffset, world->mSubsampleOffset,
                          world->mSampleRate, world->mBufLength);
}

bool host_inject(void *, const uint8_t *data, size_t len, uint64_t ctx)
{
    World *w = g_world.load(std::memory_order_acquire);
    return w && len <= INT32_MAX &&
           g_send(w, static_cast<int>(len),
                  reinterpret_cast<char *>(const_cast<uint8_t *>(data)), reply_func,
                  reinterpret_cast<void *>(ctx_word(ctx)));
}

int host_ready(void *)
{
    World *w = g_world.load(std::memory_order_acquire);
    if (!w) return TUTTI_PROXY_WAIT_ATTACH;
    if (g_ctx_offset.load(std::memory_order_acquire)) return TUTTI_PROXY_READY;
    uint64_t now = mono_ns();
    if (!g_last_probe_ns || now - g_last_probe_ns > 100000000u) {
        g_last_probe_ns = now;
        /* "/status" with an empty type tag string */
        static const char probe[12] = {'/', 's', 't', 'a', 't', 'u',
                                       's', 0,   ',', 0,   0,   0};
        g_send(w, sizeof probe, const_cast<char *>(probe), reply_func,
               reinterpret_cast<void *>(probe_word()));
    }
    return TUTTI_PROXY_WAIT_CALIBRATE;
}

void host_log(void *, const char *line)
{
    Print("%s\n", line);
}

/* Read once the World is attached (its sizes are fixed at boot). */
void host_server(void *, tutti_proxy_server *out)
{
    World *w = g_world.load(std::memory_order_acquire);
    *out = {};
    if (!w) return;
    out->buffers = static_cast<int32_t>(w->mNumSndBufs);
    out->audio_buses = static_cast<int32_t>(w->mNumAudioBusChannels);
    out->control_buses = static_cast<int32_t>(w->mNumControlBusChannels);
    out->inputs = static_cast<int32_t>(w->mNumInputs);
    out->outputs = static_cast<int32_t>(w->mNumOutputs);
}

/* ----------------------------------------------------------- the guard */

struct TuttiGuard : public Unit {
    uint32_t slot, stage, nch;
    float *copy;    /* stage 0: the outputs before the part, nch * buflen */
    int32 stamp;    /* stage 0: the block the copy is of */
    tutti__guard g; /* stage 1: the limiter */
};

/* The guards before each part, by slot (audio thread only). */
TuttiGuard *g_before[TUTTI_GUARD_SLOTS];

void TuttiGuard_before(TuttiGuard *unit, int)
{
    World *w = unit->mWorld;
    uint32_t len = static_cast<uint32_t>(w->mBufLength);
    for (uint32_t ch = 0; ch < unit->nch; ch++) {
        float *dst = unit->copy + ch * len;
        if (w->mAudioBusTouched[ch] == w->mBufCounter)
            std::memcpy(dst, w->mAudioBus + ch * len, len * sizeof(float));
        else
            std::memset(dst, 0, len * sizeof(float));
    }
    unit->stamp = w->mBufCounter;
}

void TuttiGuard_after(TuttiGuard *unit, int)
{
    World *w = unit->mWorld;
    TuttiGuard *b = g_before[unit->slot];
    if (!b || b->stamp != w->mBufCounter || b->nch != unit->nch) return;
    uint32_t len = static_cast<uint32_t>(w->mBufLength);
    float *out[64];
    const float *before[64];
    bool touched[64];
    bool any = false;
    for (uint32_t ch = 0; ch < unit->nch; ch++) {
        out[ch] = w->mAudioBus + ch * len;
        before[ch] = b->copy + ch * len;
        touched[ch] = w->mAudioBusTouched[ch] == w->mBufCounter;
        any |= touched[ch];
    }
    if (!any) return;
    uint32_t bad = 0;
    uint32_t limited = tutti__guard_run(&unit->g, out, before, touched, unit->nch, len,
                                        IN0(2), tutti__guard_gain(unit->slot), &bad);
    tutti__guard_count(unit->slot, limited, bad);
}

void TuttiGuard_none(TuttiGuard *, int) {}

void TuttiGuard_Ctor(TuttiGuard *unit)
{
    World *w = unit->mWorld;
    float slot = IN0(0), stage = IN0(1);
    unit->slot = slot >= 1 && slot < TUTTI_GUARD_SLOTS ? static_cast<uint32_t>(slot) : 0;
    unit->stage = stage == 1 ? 1 : 0;
    unit->nch = static_cast<uint32_t>(w->mNumOutputs);
    if (unit->nch > 64) unit->nch = 64;
    unit->copy = nullptr;
    unit->stamp = -1;
    tutti__guard_init(&unit->g, w->mSampleRate);
    SETCALC(TuttiGuard_none);
    if (!unit->slot) return;
    if (unit->stage == 0) {
        unit->copy = static_cast<float *>(
            RTAlloc(w, sizeof(float) * unit->nch * static_cast<size_t>(w->mBufLength)));
        if (!unit->copy) return;
        g_before[unit->slot] = unit;
        SETCALC(TuttiGuard_before);
    } else {
        SETCALC(TuttiGuard_after);
    }
}

void TuttiGuard_Dtor(TuttiGuard *unit)
{
    if (unit->slot && g_before[unit->slot] == unit) g_before[unit->slot] = nullptr;
    if (unit->copy) RTFree(unit->mWorld, unit->copy);
}

} // namespace

PluginLoad(TuttiProxy)
{
    ft = inTable;
    DefinePlugInCmd("tutti_attach", attach_cmd, nullptr);
    DefinePlugInCmd("tutti_anchor", anchor_cmd, nullptr);
    tutti__ugens_load(inTable);
    DefineDtorUnit(TuttiGuard);

    const char *clock = getenv("TUTTI_UGEN_CLOCK");
    if (clock && !strcmp(clock, "jack")) {
        void *fn = dlsym(RTLD_DEFAULT, "jack_get_cycle_times");
        Dl_info di;
        if (fn && dladdr(fn, &di) && di.dli_fname && strstr(di.dli_fname, "pipewire"))
            fn = nullptr; /* PipeWire's JACK needs a client handle */
        g_cycle_times = reinterpret_cast<CycleTimesFn>(fn);
        if (fn) {
            tutti__beat_jack_clock(reinterpret_cast<uint64_t (*)(void)>(
                dlsym(RTLD_DEFAULT, "jack_get_time")));
            tutti__beat_jack_cycles(jack_cycles);
        }
        Print(fn ? "tutti: the UGens follow JACK's engine clock\n"
                 : "tutti: TUTTI_UGEN_CLOCK=jack needs JACK2; the UGens follow the "
                   "server's clock\n");
    }
    g_send = reinterpret_cast<SendPacketFn>(
        dlsym(RTLD_DEFAULT, "World_SendPacketWithContext"));
    if (!g_send) {
        Print("tutti: this server has no World_SendPacketWithContext (scsynth 3.6 "
              "and later have it); the proxy is off\n");
        return;
    }
    tutti_proxy_config cfg;
    tutti__proxy_config_init(&cfg);
    tutti_proxy_host host = {host_inject, host_ready, host_log, host_server, nullptr};
    int err = tutti__proxy_start(&cfg, &host);
    if (err) Print("tutti: the proxy did not start: %s\n", tutti_strerror(err));
}

C_LINKAGE SC_API_EXPORT void unload()
{
    tutti__proxy_stop();
    if (uint64_t n = g_unroutable.load())
        Print("tutti: %llu replies had a ReplyAddress the proxy could not read\n",
              static_cast<unsigned long long>(n));
}
