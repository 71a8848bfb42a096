#include "backend/cpu/kernel.h"

static const ri__kernel_fn k_ref[RI__OP_COUNT] = {
#define RI__REF_ENTRY_(name) [RI__OP_##name] = ri__ref_##name,
    RI__OP_LIST(RI__REF_ENTRY_)
#undef RI__REF_ENTRY_
};

ri__kernel_fn ri__ref_kernel(ri__op op) { return (unsigned)op < RI__OP_COUNT ? k_ref[op] : 0; }
