#ifndef UNETC_CPREFETCH_H
#define UNETC_CPREFETCH_H

/// A software prefetch of the cache line holding `address` into every cache level (a hint: it
/// never faults, whatever the address). Swift has no prefetch intrinsic, and the microkernels that
/// stream filters from memory run at about half speed without one: the hardware prefetcher does not
/// run far enough ahead of a stream read 24 bytes per 12 FMAs. Swift inlines this static function.
static inline void unetc_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
