/* Name → value index lookup for the importer, so that resolving the names of large (or hostile) models
 * stays linear instead of scanning every value for every node input. */
#include <string.h>

#include "core/alloc.h"
#include "onnx/internal.h"

/* FNV-1a. */
static size_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return (size_t)h;
}

void ri__onnx_names_free(ri__onnx_names *m) {
  ri__free(m->slots);
  memset(m, 0, sizeof *m);
}

int ri__onnx_names_find(const ri__onnx_names *m, const ri__graph *g, const char *name) {
  if (!m->cap || !name) return -1;
  size_t mask = m->cap - 1;
  for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
    int v = m->slots[i];
    if (v < 0) return -1;
    if (strcmp(g->values[v].name, name) == 0) return v;
  }
}

static void insert_slot(int *slots, size_t cap, const ri__graph *g, int value) {
  size_t mask = cap - 1;
  size_t i = hash_name(g->values[value].name) & mask;
  while (slots[i] >= 0)
    i = (i + 1) & mask;
  slots[i] = value;
}

ri_status ri__onnx_names_add(ri__onnx_names *m, const ri__graph *g, int value, ri__err *err) {
  if (value < 0 || value >= g->n_values || !g->values[value].name)
    return ri__err_set(err, RI_ERR_INTERNAL, "name map: value %d has no name", value);
  /* Keep the load factor at or below one half so that probing always ends at an empty slot. */
  if ((m->count + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    int *slots = ri__calloc(cap, sizeof(int));
    if (!slots) return RI__OOM(err);
    memset(slots, 0xff, cap * sizeof(int));
    for (size_t i = 0; i < m->cap; i++)
      if (m->slots[i] >= 0) insert_slot(slots, cap, g, m->slots[i]);
    ri__free(m->slots);
    m->slots = slots;
    m->cap = cap;
  }
  insert_slot(m->slots, m->cap, g, value);
  m->count++;
  return RI_OK;
}
