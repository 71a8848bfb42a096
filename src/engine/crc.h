/* CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78): the checksum of engine files.
 *
 * The value is the standard CRC-32C: initial value all ones, reflected input and output, final XOR all
 * ones, so that ri__crc32c(0, "123456789", 9) == 0xE3069283. The function is incremental: passing the
 * result of a previous call as `crc` continues the same checksum over the next bytes, and 0 starts a new
 * one. Thread-safe. Uses the SSE4.2 crc32 instruction where the CPU has it, a table otherwise; both give
 * identical results. */
#ifndef RI_ENGINE_CRC_H
#define RI_ENGINE_CRC_H

#include <stddef.h>
#include <stdint.h>

uint32_t ri__crc32c(uint32_t crc, const void *data, size_t n);
/* The table-driven implementation alone (tests compare it against the accelerated one). */
uint32_t ri__crc32c_portable(uint32_t crc, const void *data, size_t n);

#endif
