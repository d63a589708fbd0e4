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
 * - Contexts are 64-bit client names (proxy.h); a 64-bit pointer holds them.
 *   A 32-bit server (the Bela) will need a table in the proxy first.
 */
#include <SC_PlugIn.h>
#include <SC_Reply.h>

#include "beat.h"
#include "proxy.h"
#include "tutti/tutti.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <time.h>

static_assert(sizeof(void *) == 8, "the proxy's reply contexts need 64-bit pointers");

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
            if (word_at(b, at) == self &&
                word_at(b, at + sizeof(uintptr_t)) == kProbeCtx) {
                g_ctx_offset.store(at + sizeof(uintptr_t), std::memory_order_release);
                *ctx = kProbeCtx;
                return true;
            }
        }
        return false;
    }
    if (word_at(b, off - sizeof(uintptr_t)) != self) return false;
    *ctx = word_at(b, off);
    return true;
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

/* /cmd tutti_anchor NTP_HI NTP_LO, on the audio thread, in the block its
 * bundle's time falls in: that block's start time, for the UGens (beat.h). */
void anchor_cmd(World *world, void *, sc_msg_iter *args, void *)
{
    uint32_t hi = static_cast<uint32_t>(args->geti());
    uint32_t lo = static_cast<uint32_t>(args->geti());
    tutti__beat_anchor_rt(static_cast<uint32_t>(world->mBufCounter),
                          tutti_time_from_ntp(static_cast<uint64_t>(hi) << 32 | lo),
                          world->mSampleOffset, world->mSubsampleOffset,
                          world->mSampleRate, world->mBufLength);
}

bool host_inject(void *, const uint8_t *data, size_t len, uint64_t ctx)
{
    World *w = g_world.load(std::memory_order_acquire);
    return w && len <= INT32_MAX &&
           g_send(w, static_cast<int>(len),
                  reinterpret_cast<char *>(const_cast<uint8_t *>(data)), reply_func,
                  reinterpret_cast<void *>(static_cast<uintptr_t>(ctx)));
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
               reinterpret_cast<void *>(static_cast<uintptr_t>(kProbeCtx)));
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

} // namespace

PluginLoad(TuttiProxy)
{
    ft = inTable;
    DefinePlugInCmd("tutti_attach", attach_cmd, nullptr);
    DefinePlugInCmd("tutti_anchor", anchor_cmd, nullptr);
    tutti__ugens_load(inTable);

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
