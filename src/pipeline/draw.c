#include "pipeline/draw.h"

#include <errno.h>
#include <spng.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

/* 3x5 pixel glyphs, one row per 3-bit group (bit 2 = left column), for lower-case letters, digits and a
 * few symbols; other characters draw as a filled box. */
static const char *const k_glyph_chars = "abcdefghijklmnopqrstuvwxyz0123456789. _-";
static const unsigned char k_glyphs[][5] = {
    {2, 5, 7, 5, 5}, {6, 5, 6, 5, 6}, {3, 4, 4, 4, 3}, {6, 5, 5, 5, 6}, {7, 4, 6, 4, 7}, {7, 4, 6, 4, 4},
    {3, 4, 5, 5, 3}, {5, 5, 7, 5, 5}, {7, 2, 2, 2, 7}, {1, 1, 1, 5, 2}, {5, 5, 6, 5, 5}, {4, 4, 4, 4, 7},
    {5, 7, 7, 5, 5}, {6, 5, 5, 5, 5}, {2, 5, 5, 5, 2}, {6, 5, 6, 4, 4}, {2, 5, 5, 6, 3}, {6, 5, 6, 5, 5},
    {3, 4, 2, 1, 6}, {7, 2, 2, 2, 2}, {5, 5, 5, 5, 7}, {5, 5, 5, 5, 2}, {5, 5, 7, 7, 5}, {5, 5, 2, 5, 5},
    {5, 5, 2, 2, 2}, {7, 1, 2, 4, 7}, {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {6, 1, 2, 4, 7}, {6, 1, 2, 1, 6},
    {5, 5, 7, 1, 1}, {7, 4, 6, 1, 6}, {3, 4, 6, 5, 2}, {7, 1, 2, 2, 2}, {2, 5, 2, 5, 2}, {2, 5, 3, 1, 6},
    {0, 0, 0, 0, 2}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 7}, {0, 0, 7, 0, 0},
};

static const unsigned char k_palette[6][3] = {{255, 64, 64}, {64, 220, 64},  {64, 128, 255},
                                              {255, 200, 0}, {220, 64, 220}, {0, 220, 220}};

static void put(ri_image *im, int x, int y, const unsigned char *c) {
  if (x < 0 || y < 0 || x >= im->width || y >= im->height) return;
  unsigned char *p = im->data + (size_t)y * im->stride + (size_t)x * 3;
  p[0] = c[0], p[1] = c[1], p[2] = c[2];
}

static void rect(ri_image *im, int x0, int y0, int x1, int y1, int t, const unsigned char *c) {
  for (int k = 0; k < t; k++) {
    for (int x = x0; x <= x1; x++)
      put(im, x, y0 + k, c), put(im, x, y1 - k, c);
    for (int y = y0; y <= y1; y++)
      put(im, x0 + k, y, c), put(im, x1 - k, y, c);
  }
}

static void text(ri_image *im, int x, int y, const char *s, int scale, const unsigned char *c) {
  static const unsigned char bg[3] = {0, 0, 0};
  int w = (int)strlen(s) * 4 * scale + scale;
  for (int yy = y - scale; yy < y + 6 * scale; yy++)
    for (int xx = x - scale; xx < x + w; xx++)
      put(im, xx, yy, bg);
  for (const char *p = s; *p; p++, x += 4 * scale) {
    char ch = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
    const char *f = strchr(k_glyph_chars, ch);
    static const unsigned char box[5] = {7, 7, 7, 7, 7};
    const unsigned char *g = f && ch ? k_glyphs[f - k_glyph_chars] : box;
    for (int row = 0; row < 5; row++)
      for (int col = 0; col < 3; col++)
        if (g[row] & (4 >> col))
          for (int sy = 0; sy < scale; sy++)
            for (int sx = 0; sx < scale; sx++)
              put(im, x + col * scale + sx, y + row * scale + sy, c);
  }
}

static ri_status write_png(const char *path, const ri_image *im, ri__err *err) {
  FILE *f = fopen(path, "wb");
  if (!f) return ri__err_set(err, RI_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  int rc = ctx ? 0 : SPNG_EMEM;
  struct spng_ihdr ih = {.width = (uint32_t)im->width,
                         .height = (uint32_t)im->height,
                         .bit_depth = 8,
                         .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
  if (!rc) rc = spng_set_png_file(ctx, f);
  if (!rc) rc = spng_set_ihdr(ctx, &ih);
  if (!rc) rc = spng_encode_image(ctx, NULL, 0, SPNG_FMT_PNG, SPNG_ENCODE_PROGRESSIVE | SPNG_ENCODE_FINALIZE);
  for (int y = 0; !rc && y < im->height; y++) {
    rc = spng_encode_row(ctx, im->data + (size_t)y * im->stride, (size_t)im->width * 3);
    if (rc == SPNG_EOI) rc = 0;
  }
  spng_ctx_free(ctx);
  int cl = fclose(f);
  if (rc || cl) {
    remove(path);
    return ri__err_set(err, RI_ERR_IO, "cannot write PNG '%s': %s", path,
                       rc ? spng_strerror(rc) : strerror(errno));
  }
  return RI_OK;
}

ri_status ri__draw_detections(const char *dir, ri__record *r, const char *const *labels, size_t n_labels,
                              ri__err *err) {
  ri_image *im = r->image;
  if (!im) return RI_OK;
  int t = im->width > 600 ? 3 : 2, scale = im->width > 600 ? 3 : 2;
  for (size_t i = r->n_dets; i-- > 0;) {
    const ri_detection *d = &r->dets[i];
    const unsigned char *c = k_palette[(unsigned)d->class_id % 6];
    rect(im, (int)d->xmin, (int)d->ymin, (int)d->xmax, (int)d->ymax, t, c);
    char cap[96];
    const char *lab =
        d->class_id >= 0 && (size_t)d->class_id < n_labels && labels[d->class_id] ? labels[d->class_id] : "";
    snprintf(cap, sizeof cap, "%.40s %.2f", *lab ? lab : "class", d->score);
    int ty = (int)d->ymin - 7 * scale;
    text(im, (int)d->xmin + scale, ty < scale ? (int)d->ymin + 2 * scale : ty, cap, scale, c);
  }
  const char *base = r->key;
  for (const char *p = r->key; *p; p++)
    if (*p == '/') base = p + 1;
  char name[256];
  size_t k = 0;
  for (const char *p = base; *p && k < 200; p++) {
    char ch = *p;
    name[k++] = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-')
                    ? ch
                    : '_';
  }
  name[k] = 0;
  size_t l = strlen(dir) + k + 48;
  char *path = ri__malloc(l);
  if (!path) return RI__OOM(err);
  snprintf(path, l, "%s/%06llu_%s.png", dir, (unsigned long long)r->seq, name);
  ri_status s = write_png(path, im, err);
  ri__free(path);
  return s;
}
