#include "ssegw/shard/heap_trim.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ssegw {

bool heap_trim::on_tick(std::uint32_t tick) noexcept {
    const auto this_tick = handshakes_ - at_last_tick_;
    at_last_tick_ = handshakes_;
    if (handshakes_ - at_last_trim_ < min_wave || this_tick >= quiet_per_tick) return false;
    if (trims_ != 0 && tick - last_trim_tick_ < min_interval_ticks) return false;
    at_last_trim_ = handshakes_;
    last_trim_tick_ = tick;
    ++trims_;
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
    return true;
}

} // namespace ssegw
