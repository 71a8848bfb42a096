#include <string.h>

#include "graph/op.h"

static const ri__op_def *const k_defs[RI__OP_COUNT] = {
#define RI__OPDEF_ENTRY_(name) [RI__OP_##name] = &ri__opdef_##name,
    RI__OP_LIST(RI__OPDEF_ENTRY_)
#undef RI__OPDEF_ENTRY_
};

const ri__op_def *ri__op_get(ri__op op) { return (unsigned)op < RI__OP_COUNT ? k_defs[op] : 0; }

const char *ri__op_name(ri__op op) {
  const ri__op_def *d = ri__op_get(op);
  return d ? d->name : "?";
}

int ri__op_from_name(const char *name, ri__op *op) {
  for (int i = 0; i < RI__OP_COUNT; i++) {
    if (strcmp(k_defs[i]->name, name) == 0) {
      *op = (ri__op)i;
      return 1;
    }
  }
  return 0;
}
