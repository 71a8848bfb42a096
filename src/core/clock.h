/* The monotonic clock the library times itself with (timing, profiling, adaptive choices). */
#ifndef RI_CORE_CLOCK_H
#define RI_CORE_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC (an arbitrary origin; only differences mean anything). */
double ri__clock_ms(void);

#endif
