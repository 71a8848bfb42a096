/* The engine file (.rie): an optimized graph, its weights and the options it was built with.
 *
 * ==== Byte layout, format version 1 ====================================================================
 * All integers are little-endian, floats are IEEE-754 binary32 stored as their bit pattern (u32), and
 * constant tensor data is stored in little-endian element order (runinfer only runs on little-endian
 * hosts). Offsets are from the start of the file unless stated otherwise.
 *
 *   HEADER (64 bytes, at offset 0)
 *     0   u8[8]  magic "RIENGINE"
 *     8   u32    format version (1)
 *     12  u32    header size in bytes (64; readers skip bytes between 64 and this size)
 *     16  u32    flags (none defined: must be 0)
 *     20  u32    section count (1 .. 64)
 *     24  u64    total file size in bytes, trailer included
 *     32  u64    offset of the section table
 *     40  u8[24] reserved, written as 0, ignored by readers
 *   SECTIONS  the sections' bytes; the writer starts each one at a multiple of 64 and pads with zeros
 *   SECTION TABLE (section count entries of 24 bytes)
 *     0   u32    tag: four ASCII characters, "META", "GRPH" or "WGHT" (readers skip unknown tags)
 *     4   u32    CRC-32C of the section's bytes
 *     8   u64    offset of the section
 *     16  u64    size of the section in bytes
 *   TRAILER (last 8 bytes of the file)
 *     0   u32    CRC-32C (src/engine/crc.h) of every byte of the file before the trailer
 *     4   u8[4]  end marker "REND"
 *
 *   Sections lie between the header and the trailer, inside the file, and overlap neither each other nor
 *   the section table. META, GRPH and WGHT are each present exactly once. WGHT starts at a multiple of 64.
 *
 *   Encodings used inside sections:
 *     str   u32 length, then that many bytes without a terminator. The bytes contain no NUL. The length
 *           0xFFFFFFFF (no bytes follow) encodes a NULL string, accepted only where noted "str?".
 *     bool  u8, 0 or 1.
 *     list of T  u32 count, then count T.
 *
 *   META section
 *     i32 max_batch (1 .. 65536)   i32 precision (ri_precision)   i32 threads (0 .. 65536)
 *     i64 arena_size (0 .. 2^48)   str device   str fingerprint   str library_version
 *     list of { str key (non-empty), str value }   user metadata, keys unique
 *
 *   GRPH section
 *     str? graph name   i64 opset (0 .. 10000)   i32 batch (1 .. 65536, the batch of the stored shapes)
 *     list of VALUE, each:
 *       str? name   u32 dtype (ri_dtype code; 0 = undefined allowed for activations only)
 *       u8 kind (ri__val_kind)   bool is_output   bool batch_dependent   bool host
 *       i32 batch_axis (-1 .. rank-1)   u32 rank (0 .. 8)   i64 dims[rank] (each >= 0)
 *       i64 mem_offset (-1 = unplanned)   i64 mem_size (>= 0; mem_offset + mem_size <= arena_size)
 *       u64 data_offset   u64 data_size   constants only (0 and 0 for other kinds): the constant's bytes
 *                         at data_offset from the start of WGHT, a multiple of 64; data_size equals
 *                         numel * dtype size exactly
 *     list of NODE, each:
 *       str name   str op (ONNX op_type, resolved with ri__op_from_name; enum numbers are never stored)
 *       list of i32 inputs (-1 = absent optional input, else a value index)
 *       list of i32 outputs (-1 = absent optional output, else a value index)
 *       list of ATTR, each: str name, u32 type (ri__attr_type), then by type:
 *         FLOAT f32 | INT i64 | STRING str | TENSOR i32 index of a constant value |
 *         FLOATS list of f32 | INTS list of i64 | STRINGS list of str
 *       u32 act (ri__act)   f32 act_a   f32 act_b   bool host   i32 tactic
 *         (backend-specific, 0 = none: graph passes' RI__CONV_TACTIC_* (graph/passes.h), or a tactic the CUDA
 *         backend chose by timing at build (backend/cuda/cuda_tactics.h); a value the backend does not
 *         recognise leaves the node to its heuristics)
 *     list of i32 graph inputs   list of i32 graph outputs
 *     Every byte of the section is consumed: trailing bytes are an error.
 *
 *   WGHT section: the constants' data at the offsets the value table gives; bytes between them are zero.
 *
 * Not stored: node params (op check() recomputes them), value producers (ri__graph_link recomputes them),
 * host values' contents (shape inference recomputes them), dead nodes (the writer refuses them).
 *
 * ==== Compatibility ======================================================================================
 * A reader accepts exactly format version RI__RIE_FORMAT_VERSION; any other version fails with
 * RI_ERR_STALE naming both versions. Changing the meaning or order of any field above requires a new
 * version; a new optional section with a new tag does not (older readers skip it). ri__rie_check_compat()
 * additionally requires the library version and the device fingerprint to equal the host's.
 * ======================================================================================================= */
#ifndef RI_ENGINE_RIE_FORMAT_H
#define RI_ENGINE_RIE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "graph/ir.h"

#define RI__RIE_MAGIC          "RIENGINE"
#define RI__RIE_END_MARKER     "REND"
#define RI__RIE_FORMAT_VERSION 1u
#define RI__RIE_HEADER_SIZE    64u
#define RI__RIE_SECTION_ENTRY  24u
#define RI__RIE_TRAILER_SIZE   8u
#define RI__RIE_ALIGN          64u
#define RI__RIE_NULL_STRING    0xFFFFFFFFu

/* Header field offsets. */
#define RI__RIE_OFF_VERSION     8u
#define RI__RIE_OFF_HEADER_SIZE 12u
#define RI__RIE_OFF_FLAGS       16u
#define RI__RIE_OFF_SECTIONS    20u
#define RI__RIE_OFF_FILE_SIZE   24u
#define RI__RIE_OFF_TABLE       32u

#define RI__RIE_TAG(a, b, c, d)                                                                              \
  ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define RI__RIE_TAG_META    RI__RIE_TAG('M', 'E', 'T', 'A')
#define RI__RIE_TAG_GRAPH   RI__RIE_TAG('G', 'R', 'P', 'H')
#define RI__RIE_TAG_WEIGHTS RI__RIE_TAG('W', 'G', 'H', 'T')

/* Limits the reader enforces (in addition to ir.h's RI__MAX_*) and the writer respects. */
#define RI__RIE_MAX_SECTIONS     64u
#define RI__RIE_MAX_FILE         ((uint64_t)1 << 40)
#define RI__RIE_MAX_META         4096
#define RI__RIE_MAX_META_VALUE   (64u << 20) /* bytes of one metadata value */
#define RI__RIE_MAX_SHORT_STRING 1024u       /* device, fingerprint, library version */
#define RI__RIE_MAX_ATTR_STRING  65536u      /* STRING / STRINGS attribute elements */
#define RI__RIE_MAX_BATCH        65536
#define RI__RIE_MAX_THREADS      65536
#define RI__RIE_MAX_ARENA        ((int64_t)1 << 48)
#define RI__RIE_MAX_OPSET        10000

typedef struct {
  char *key;
  char *value;
} ri__kv;

/* Everything an engine file holds. After a successful ri__rie_read every pointer member is owned by the
 * struct and released by ri__rie_content_free; for ri__rie_write the caller keeps ownership. */
typedef struct {
  ri__graph *graph;
  int max_batch;
  int precision; /* ri_precision */
  int threads;
  char *device;          /* "cpu", "cuda:0" ... */
  char *fingerprint;     /* device fingerprint the engine was built for */
  char *library_version; /* ri_version() at build */
  int64_t arena_size;    /* activation arena bytes at max_batch */
  ri__kv *meta;          /* user metadata ("preprocess", "labels", "detect" ...), keys unique */
  int n_meta;
} ri__rie_content;

/* Serializes c into a new buffer (*out, allocated with ri__malloc, *out_size bytes; the caller frees it
 * with ri__free). c->graph must be linked, without dead nodes; every constant must hold exactly
 * numel * dtype size bytes; device, fingerprint, library_version and every key and value must be
 * non-NULL; every count and length must be within the reader's limits, so that a file the writer produces
 * is always readable. Fails with RI_ERR_INVALID_ARG / RI_ERR_LIMIT naming the offending item, or
 * RI_ERR_NO_MEMORY; *out is untouched on failure. Does not modify c. */
ri_status ri__rie_write(const ri__rie_content *c, void **out, size_t *out_size, ri__err *err);

/* Same as ri__rie_write, to a file: the bytes go to a temporary file next to `path` that is fsync'ed and
 * then renamed over `path`, so `path` holds either its old contents or the complete new file. The
 * temporary file is removed on failure. RI_ERR_IO names the path and the system error. Weights are
 * streamed from the graph, not copied. */
ri_status ri__rie_write_file(const ri__rie_content *c, const char *path, ri__err *err);

/* Parses an engine file from memory. The bytes are untrusted: every failure returns a status with a
 * message naming the field and values (RI_ERR_PARSE for malformed structure, RI_ERR_LIMIT for limits,
 * RI_ERR_UNSUPPORTED for unknown op names or flags, RI_ERR_STALE for another format version,
 * RI_ERR_CHECKSUM for corruption, RI_ERR_NO_MEMORY), never crashes and leaves *out zeroed with nothing
 * allocated. On success *out owns a graph whose topology passed ri__graph_link; ops' check() has NOT
 * been run (node params are NULL) and the device/library compatibility is NOT checked (see
 * ri__rie_check_compat). The data is not referenced after the call returns. In builds that define
 * FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (fuzz targets only) checksum mismatches are ignored so that
 * mutated inputs reach the structure checks. */
ri_status ri__rie_read(const void *data, size_t size, ri__rie_content *out, ri__err *err);

/* Same as ri__rie_read, from a file (mapped or read, then released before returning); messages name the
 * path. */
ri_status ri__rie_read_file(const char *path, ri__rie_content *out, ri__err *err);

/* Frees everything a successful ri__rie_read filled and zeroes *c. NULL is a no-op. */
void ri__rie_content_free(ri__rie_content *c);

/* This host's CPU fingerprint, "cpu:<arch>:<comma-separated ISA features>" (e.g.
 * "cpu:x86_64:sse4_1,sse4_2,avx,avx2,fma,f16c"), listing only features the OS has enabled. Static string,
 * the same for the life of the process; thread-safe. */
const char *ri__rie_host_fingerprint(void);

/* Checks that an engine read from a file may run here: its library version must equal ri_version() and its
 * fingerprint must equal host_fingerprint (the fingerprint of the device the engine will run on: for CPU
 * engines ri__rie_host_fingerprint()). Fails with RI_ERR_STALE quoting both values and advising a rebuild;
 * RI_ERR_INVALID_ARG for NULL arguments. The format version needs no check here: ri__rie_read already
 * refuses other versions with RI_ERR_STALE. */
ri_status ri__rie_check_compat(const ri__rie_content *c, const char *host_fingerprint, ri__err *err);

#endif
