/* Device-side input normalisation: the model's float32 image input becomes a uint8 NHWC input of the same
 * name, and the graph starts with Cast(float) -> Sub(mean) -> Mul(scale) [-> Transpose to NCHW], which is
 * what the host preprocessing (ri_preprocess) would have computed from the resized pixels. The host then
 * sends 1 byte per channel instead of 4, and the normalisation runs on the engine's device.
 *
 * Runs on the graph as imported (before shape inference), so that every later pass sees the new nodes as
 * ordinary ones. The image input is the first graph input that is float32, rank 4, and whose channel axis
 * (1 for NCHW, 3 for NHWC) is 3 and spatial axes are height x width. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/passes.h"

static int is_image_input(const ri__value *v, const ri__u8_input *p) {
  if (v->dtype != RI_DTYPE_FLOAT32 || v->shape.rank != 4) return 0;
  const int64_t *d = v->shape.dims;
  return p->nchw ? d[1] == 3 && d[2] == p->height && d[3] == p->width
                 : d[3] == 3 && d[1] == p->height && d[2] == p->width;
}

static int add_vec3(ri__graph *g, const char *name, const float x[3]) {
  float *data = ri__malloc(3 * sizeof(float));
  if (!data) return -1;
  memcpy(data, x, 3 * sizeof(float));
  ri__shape s = {1, {3}};
  return ri__graph_add_const(g, name, RI_DTYPE_FLOAT32, &s, data, 3 * sizeof(float));
}

static ri_status add_int_attr(ri__graph *g, int node, const char *name, int64_t value, ri__err *err) {
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.type = RI__ATTR_INT;
  a.i = value;
  a.name = ri__strdup(name);
  if (!a.name) return RI__OOM(err);
  return ri__graph_add_attr(g, node, &a, err);
}

static ri_status add_perm_attr(ri__graph *g, int node, ri__err *err) {
  static const int64_t perm[4] = {0, 3, 1, 2};
  ri__attr a;
  memset(&a, 0, sizeof a);
  a.type = RI__ATTR_INTS;
  a.n = 4;
  a.name = ri__strdup("perm");
  a.ints = ri__malloc(sizeof perm);
  if (!a.name || !a.ints) {
    ri__attr_free(&a);
    return RI__OOM(err);
  }
  memcpy(a.ints, perm, sizeof perm);
  return ri__graph_add_attr(g, node, &a, err);
}

/* A new activation value; the name is the input's plus a suffix. */
static int add_act(ri__graph *g, const char *base, const char *suffix) {
  char name[512];
  snprintf(name, sizeof name, "%s/%s", base, suffix);
  return ri__graph_add_value(g, name, RI_DTYPE_FLOAT32, NULL, RI__VAL_ACTIVATION);
}

static int add_node(ri__graph *g, const char *base, const char *suffix, ri__op op, int in0, int in1,
                    int out) {
  char name[512];
  snprintf(name, sizeof name, "%s/%s", base, suffix);
  int ins[2] = {in0, in1};
  return ri__graph_add_node(g, name, op, ins, in1 >= 0 ? 2 : 1, &out, 1);
}

ri_status ri__pass_uint8_input(ri__graph *g, const ri__u8_input *p, ri__err *err) {
  int slot = -1;
  for (int i = 0; i < g->n_inputs && slot < 0; i++)
    if (is_image_input(&g->values[g->inputs[i]], p)) slot = i;
  if (slot < 0) {
    char shp[96] = "none";
    if (g->n_inputs > 0) ri__shape_str(&g->values[g->inputs[0]].shape, shp, sizeof shp);
    return ri__err_set(err, RI_ERR_INVALID_ARG,
                       "device preprocessing: no float32 input of shape [N,%d,%d,%d] (the preprocess "
                       "metadata's size and layout); the first input '%s' has dtype %s and shape %s",
                       p->nchw ? 3 : p->height, p->nchw ? p->height : p->width, p->nchw ? p->width : 3,
                       g->n_inputs > 0 && g->values[g->inputs[0]].name ? g->values[g->inputs[0]].name : "?",
                       g->n_inputs > 0 ? ri_dtype_name(g->values[g->inputs[0]].dtype) : "-", shp);
  }
  int old = g->inputs[slot];
  char *name = ri__strdup(g->values[old].name ? g->values[old].name : "input");
  if (!name) return RI__OOM(err);
  ri__shape s = g->values[old].shape;
  ri__shape hwc = {4, {s.dims[0], p->height, p->width, 3}};
  int batch_axis = g->values[old].batch_axis;

  /* The old input keeps its index (every consumer still reads it) and becomes the last node's output. */
  char *normalized = ri__malloc(strlen(name) + 16);
  ri_status st = RI_OK;
  if (!normalized) st = RI__OOM(err);
  if (st == RI_OK) {
    sprintf(normalized, "%s/normalized", name);
    ri__free(g->values[old].name);
    g->values[old].name = normalized;
    g->values[old].kind = RI__VAL_ACTIVATION;
    g->values[old].batch_axis = -1;
  }
  int in = st == RI_OK ? ri__graph_add_value(g, name, RI_DTYPE_UINT8, &hwc, RI__VAL_INPUT) : -1;
  int mean = in >= 0 ? add_vec3(g, "runinfer/preprocess/mean", p->mean) : -1;
  int scale = mean >= 0 ? add_vec3(g, "runinfer/preprocess/scale", p->scale) : -1;
  int cast = scale >= 0 ? add_act(g, name, "as_float") : -1;
  int sub = cast >= 0 ? add_act(g, name, "minus_mean") : -1;
  int mul = sub >= 0 ? (p->nchw ? add_act(g, name, "scaled") : old) : -1;
  if (st == RI_OK && mul < 0) st = RI__OOM(err);
  if (st == RI_OK) {
    g->values[in].batch_axis = batch_axis;
    g->inputs[slot] = in;
    int n = add_node(g, name, "cast", RI__OP_Cast, in, -1, cast);
    if (n < 0) st = RI__OOM(err);
    if (st == RI_OK) st = add_int_attr(g, n, "to", 1 /* ONNX FLOAT */, err);
    if (st == RI_OK && add_node(g, name, "sub_mean", RI__OP_Sub, cast, mean, sub) < 0) st = RI__OOM(err);
    if (st == RI_OK && add_node(g, name, "mul_scale", RI__OP_Mul, sub, scale, mul) < 0) st = RI__OOM(err);
    if (st == RI_OK && p->nchw) {
      n = add_node(g, name, "to_nchw", RI__OP_Transpose, mul, -1, old);
      if (n < 0) st = RI__OOM(err);
      if (st == RI_OK) st = add_perm_attr(g, n, err);
    }
  }
  ri__free(name);
  if (st != RI_OK) return ri__err_prefix(err, "device preprocessing");
  return ri__graph_toposort(g, err);
}
