#pragma once
// Invariant checks for the libFuzzer targets. A broken invariant must abort (not throw: a
// target may legitimately catch exceptions around the code under test), and the message names
// the check so a finding is readable without a debugger.

#include <cstdio>
#include <cstdlib>

/// Aborts with file:line and the failed condition when `cond` is false.
#define SSEGW_FUZZ_CHECK(cond)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)
