// Fuzzes GET /presence's query parsing (whoever reaches the admin port sends it) and the
// decoding of the presence functions' replies (what a Redis, or something posing as one, sends
// back). The input is tried as a query string and as RESP bytes.

#include "fuzz_check.hpp"

#include "ssegw/core/channel.hpp"
#include "ssegw/core/presence_query.hpp"
#include "ssegw/redis/presence_functions.hpp"
#include "ssegw/redis/resp.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <variant>

namespace {

void check_query(std::string_view query) {
    auto parsed = ssegw::parse_presence_query(query);
    if (auto* problem = std::get_if<std::string>(&parsed)) {
        SSEGW_FUZZ_CHECK(!problem->empty());
        return;
    }
    const auto& users = std::get<std::vector<std::string>>(parsed);
    SSEGW_FUZZ_CHECK(!users.empty() && users.size() <= ssegw::max_presence_users);
    std::unordered_set<std::string> seen;
    for (const auto& u : users) {
        SSEGW_FUZZ_CHECK(ssegw::is_valid_name(u));
        SSEGW_FUZZ_CHECK(seen.insert(u).second); // no duplicates
    }
    // What is accepted goes to Redis as arguments of one call: it must build.
    const auto cmd = ssegw::presence_get_command("sse:", users);
    SSEGW_FUZZ_CHECK(cmd.size() == users.size() + 4);
}

void check_replies(std::string_view bytes) {
    ssegw::resp_reader reader;
    reader.feed(bytes);
    try {
        for (int i = 0; i < 16; ++i) {
            auto r = reader.next();
            if (!r) return;
            if (auto applied = ssegw::parse_presence_apply_reply(*r))
                SSEGW_FUZZ_CHECK(r->elements.size() == 5);
            for (std::size_t users : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
                if (auto got = ssegw::parse_presence_get_reply(*r, users))
                    SSEGW_FUZZ_CHECK(got->size() == users);
            }
        }
    } catch (const ssegw::resp_error&) {
        // Malformed RESP: the connection would be closed; nothing to check here.
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_query(text);
    check_replies(text);
    return 0;
}
