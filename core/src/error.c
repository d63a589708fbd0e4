/*
 * Error names, NTP timetag conversion, the event order and role names: the
 * small pure functions of the public API.
 *
 * Design notes
 * ------------
 * - NTP/OSC timetags are unsigned 32.32 fixed point seconds since 1900. Session
 *   time is signed nanoseconds since the same epoch, so the conversion is a
 *   change of unit only. Both directions round to the nearest unit. One
 *   nanosecond is about 4.29 timetag units, so nanoseconds -> timetag ->
 *   nanoseconds is exact; the other way loses what a nanosecond cannot hold.
 * - The fraction is converted in 64-bit integers without overflow: a 32-bit
 *   fraction times 10^9 is below 2^62, and nanoseconds below 10^9 shifted left
 *   by 32 are below 2^62 too.
 * - Timetags are NTP era 0 (1900 to 2036). tutti_time_from_ntp always reads era
 *   0; tutti_time_to_ntp reduces a time outside era 0 modulo the era length, as
 *   NTP itself does, so a session time in 2036 or later maps to the timetag an
 *   OSC peer in that era expects. The OSC "immediately" timetag (1) is only
 *   0.23 ns after the epoch and converts to 0.
 * - tutti_key_cmp is the order every member delivers in; it must be total and
 *   identical everywhere: t as signed, then origin, then seq as unsigned.
 */
#include "tutti/tutti.h"

const char *tutti_strerror(int err)
{
    switch (err) {
    case TUTTI_OK:
        return "success";
    case TUTTI_EINVAL:
        return "invalid argument";
    case TUTTI_ENOMEM:
        return "out of memory";
    case TUTTI_EPROTO:
        return "malformed message";
    case TUTTI_EVERSION:
        return "incompatible protocol version";
    case TUTTI_EFULL:
        return "queue or table full";
    case TUTTI_ESTATE:
        return "operation not valid in this state";
    case TUTTI_ECLOSED:
        return "peer or object closed";
    case TUTTI_ETRANSPORT:
        return "network transport failed";
    case TUTTI_EREJECTED:
        return "rejected by the coordinator";
    case TUTTI_ETIMEDOUT:
        return "timed out";
    default:
        return "unknown error";
    }
}

#define NS_PER_S UINT64_C(1000000000)
#define NTP_ERA_NS ((int64_t)(UINT64_C(1) << 32) * (int64_t)NS_PER_S) /* 2^32 s */

tutti_time tutti_time_from_ntp(uint64_t ntp)
{
    uint64_t sec = ntp >> 32;
    uint64_t frac = ntp & UINT32_MAX;
    /* Round to nearest; frac * 10^9 + 2^31 < 2^62. At most 10^9 after rounding. */
    uint64_t ns = (frac * NS_PER_S + (UINT64_C(1) << 31)) >> 32;
    /* sec * 10^9 + ns < 2^32 * 10^9 + 10^9 < 2^63: always representable. */
    return (tutti_time)(sec * NS_PER_S + ns);
}

uint64_t tutti_time_to_ntp(tutti_time t)
{
    int64_t in_era = t % NTP_ERA_NS;
    uint64_t sec, ns, frac;

    if (in_era < 0) in_era += NTP_ERA_NS;
    sec = (uint64_t)in_era / NS_PER_S;
    ns = (uint64_t)in_era % NS_PER_S;
    /* Round to nearest; ns << 32 < 2^62. No carry into the seconds: the largest
     * ns, 10^9 - 1, gives 4294967291.7, which rounds to 2^32 - 4. */
    frac = ((ns << 32) + NS_PER_S / 2) / NS_PER_S;
    return (sec << 32) | frac;
}

int tutti_key_cmp(const tutti_key *a, const tutti_key *b)
{
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    if (a->origin != b->origin) return a->origin < b->origin ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    return 0;
}

const char *tutti_role_name(int role)
{
    switch (role) {
    case TUTTI_ROLE_PERFORMER:
        return "performer";
    case TUTTI_ROLE_LISTENER:
        return "listener";
    case TUTTI_ROLE_CONDUCTOR:
        return "conductor";
    case TUTTI_ROLE_ADMIN:
        return "admin";
    default:
        return "unknown";
    }
}
