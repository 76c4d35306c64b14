// Fuzzes the cluster-mode composite cursor (what Last-Event-ID brings back to a cluster gateway)
// and the cluster envelope on SPUBLISH. A cursor has exactly one spelling: a parsed one formats
// back to the same bytes, stays within its bounds and never holds CR/LF/NUL.

#include "fuzz_check.hpp"

#include "ssegw/core/cluster_cursor.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (const auto c = ssegw::cluster_cursor::parse(text)) {
        SSEGW_FUZZ_CHECK(c->format() == text);
        SSEGW_FUZZ_CHECK(!c->components.empty());
        SSEGW_FUZZ_CHECK(c->components.size() <= ssegw::cluster_cursor::max_components);
        SSEGW_FUZZ_CHECK(text.size() <= ssegw::cluster_cursor::max_text_bytes);
        for (const auto& comp : c->components) {
            SSEGW_FUZZ_CHECK(comp.hash < (1u << 20));
            SSEGW_FUZZ_CHECK(c->find(comp.hash) == &comp.at);
        }
        SSEGW_FUZZ_CHECK(text.find_first_of(std::string_view("\r\n\0", 3)) ==
                         std::string_view::npos);
    }
    if (const auto env = ssegw::parse_cluster_envelope(text)) {
        const auto nl = text.find('\n');
        SSEGW_FUZZ_CHECK(env->payload.data() == text.data() + nl + 1);
        const auto id =
            "2:" + ssegw::to_base36(env->at.epoch) + "." + ssegw::to_base36(env->at.seq);
        SSEGW_FUZZ_CHECK(text.substr(1, nl - 1) == id);
    }
    return 0;
}
