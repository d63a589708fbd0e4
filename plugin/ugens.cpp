/*
 * The UGens that give synths the session's beat: TuttiBeat, TuttiPhase,
 * TuttiTempo, TuttiTrig, at audio and control rate (sc/classes/TuttiUGens.sc
 * declares them to sclang).
 *
 * Each calc function reads the newest model with one wait-free call and
 * computes its block from the block number scsynth gives (beat.h): no
 * allocation, lock or system call on the audio thread
 * (tests/plugin/beat_rt_test.cpp runs these very functions under seccomp's
 * strict mode with the allocator and the locks watched).
 *
 * Outputs are 32-bit floats, as every signal in scsynth: TuttiBeat counts
 * beats exactly up to 2^24 and in steps of 2^-10 beats beyond 2^14 (a few
 * hours at 120 bpm); TuttiPhase and TuttiTrig are computed in doubles and do
 * not lose precision with time.
 */
#include <SC_PlugIn.h>

#include "beat.h"

static InterfaceTable *ft;

namespace
{

struct TuttiBeat : public Unit {
};
struct TuttiPhase : public Unit {
};
struct TuttiTempo : public Unit {
};
struct TuttiTrig : public Unit {
    tutti__beat_trig st; /* the grid index last passed */
};

/* Samples this call computes: a block at audio rate, one value at control
 * rate. */
inline int samples(Unit *unit, int inNumSamples)
{
    return unit->mCalcRate == calc_FullRate ? inNumSamples : 1;
}

inline void fill(Unit *unit, int n, double quantum, double division, float *beat,
                 float *phase, float *tempo, float *trig, tutti__beat_trig *st = nullptr)
{
    World *w = unit->mWorld;
    tutti__beat_fill_rt(tutti__beat_read_rt(), static_cast<uint32_t>(w->mBufCounter), n,
                        w->mFullRate.mBufLength, quantum, division, beat, phase, tempo,
                        trig, st);
}

void TuttiBeat_next(TuttiBeat *unit, int inNumSamples)
{
    fill(unit, samples(unit, inNumSamples), 0, 1, OUT(0), nullptr, nullptr, nullptr);
}

void TuttiPhase_next(TuttiPhase *unit, int inNumSamples)
{
    fill(unit, samples(unit, inNumSamples), IN0(0), 1, nullptr, OUT(0), nullptr, nullptr);
}

void TuttiTempo_next(TuttiTempo *unit, int inNumSamples)
{
    fill(unit, samples(unit, inNumSamples), 0, 1, nullptr, nullptr, OUT(0), nullptr);
}

void TuttiTrig_next(TuttiTrig *unit, int inNumSamples)
{
    fill(unit, samples(unit, inNumSamples), 0, IN0(0), nullptr, nullptr, nullptr, OUT(0),
         &unit->st);
}

/* The first output value, before the first block: the block's first
 * sample's; no trigger. */
void TuttiBeat_Ctor(TuttiBeat *unit)
{
    SETCALC(TuttiBeat_next);
    fill(unit, 1, 0, 1, OUT(0), nullptr, nullptr, nullptr);
}

void TuttiPhase_Ctor(TuttiPhase *unit)
{
    SETCALC(TuttiPhase_next);
    fill(unit, 1, IN0(0), 1, nullptr, OUT(0), nullptr, nullptr);
}

void TuttiTempo_Ctor(TuttiTempo *unit)
{
    SETCALC(TuttiTempo_next);
    fill(unit, 1, 0, 1, nullptr, nullptr, OUT(0), nullptr);
}

void TuttiTrig_Ctor(TuttiTrig *unit)
{
    SETCALC(TuttiTrig_next);
    unit->st.g = NAN;
    unit->st.div = 0;
    OUT0(0) = 0.f;
}

} // namespace

void tutti__ugens_load(InterfaceTable *inTable)
{
    ft = inTable;
    DefineSimpleUnit(TuttiBeat);
    DefineSimpleUnit(TuttiPhase);
    DefineSimpleUnit(TuttiTempo);
    DefineSimpleUnit(TuttiTrig);
}
