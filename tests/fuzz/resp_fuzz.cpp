// Fuzzes the Redis side of the wire: resp_reader on bytes split into arbitrary chunks (TCP gives
// no message boundaries), parse_history_reply on every reply it yields, encode_command round
// trips, parse_redis_url and URL lists (redis.url comes from config, env and flags), and the
// cluster slot map built from a CLUSTER SHARDS reply.
//
// Input layout (see corpus/resp/): byte 0 seeds the chunk sizes, the rest is the RESP stream.

#include "fuzz_check.hpp"

#include "ssegw/core/redis_url.hpp"
#include "ssegw/redis/cluster_slots.hpp"
#include "ssegw/redis/history_functions.hpp"
#include "ssegw/redis/resp.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

// A CLUSTER SHARDS reply: refused with a reason, or a map where every slot has an online primary.
void check_slot_map(const ssegw::reply& r) {
    std::string why;
    const auto map = ssegw::cluster_slot_map::from_shards_reply(r, why);
    if (!map) {
        SSEGW_FUZZ_CHECK(!why.empty());
        return;
    }
    SSEGW_FUZZ_CHECK(!map->shards().empty());
    for (std::uint32_t slot = 0; slot < ssegw::cluster_slot_count; slot += 97) {
        const auto& shard = map->shards().at(map->shard_of_slot(static_cast<std::uint16_t>(slot)));
        SSEGW_FUZZ_CHECK(shard.primary() && shard.primary()->online);
    }
}

void check_history(const ssegw::reply& r) {
    // Ask about as many channels as the reply has blocks for, so the length check passes and
    // the block decoding is reached.
    std::vector<std::string> channels;
    if (r.type == ssegw::reply::kind::array && r.elements.size() > 4)
        for (std::size_t i = 0; i < (r.elements.size() - 4) / 2; ++i)
            channels.push_back("topic:t" + std::to_string(i));
    const std::vector<std::string>& matching = channels;
    static const std::vector<std::string> one{"user:1"};
    for (const auto* asked : {&matching, &one}) {
        const auto read = ssegw::parse_history_reply(r, *asked);
        if (!read.ok) {
            // Every failure names itself, an empty error reply ("-\r\n") included.
            SSEGW_FUZZ_CHECK(!read.error.empty());
            continue;
        }
        SSEGW_FUZZ_CHECK(std::is_sorted(
            read.entries.begin(), read.entries.end(),
            [](const auto& a, const auto& b) { return a.position.seq < b.position.seq; }));
        for (const auto& e : read.entries) SSEGW_FUZZ_CHECK(e.position.epoch == read.tip.epoch);
        if (read.unknown_position) SSEGW_FUZZ_CHECK(read.entries.empty());
    }
    (void)ssegw::is_missing_function_error(r);
    (void)ssegw::installed_code_matches(r, "#!lua name=ssegw_v1\n");
    check_slot_map(r);
    (void)r.is_push("message");
    (void)r.is_push("pmessage");
}

void check_reader(std::uint8_t seed, std::string_view stream) {
    ssegw::resp_reader reader;
    std::uint32_t state = 0x9e3779b9u ^ seed;
    try {
        while (!stream.empty()) {
            // xorshift: reproducible chunk sizes of 1..(seed % 64 + 1) bytes, mostly small.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            const std::size_t chunk =
                std::min<std::size_t>(stream.size(), 1 + state % (seed % 64 + 1));
            reader.feed(stream.substr(0, chunk));
            stream.remove_prefix(chunk);
            while (auto r = reader.next()) check_history(*r);
        }
    } catch (const ssegw::resp_error&) {
        // Sticky: the connection is dead and must stay dead.
        bool threw = false;
        try {
            reader.feed("+OK\r\n");
            (void)reader.next();
        } catch (const ssegw::resp_error&) {
            threw = true;
        }
        SSEGW_FUZZ_CHECK(threw);
    }
}

// Whatever the bytes, a command we encode decodes back to the same arguments.
void check_round_trip(std::string_view a, std::string_view b) {
    const std::string wire = ssegw::encode_command({"PUBLISH", a, b});
    ssegw::resp_reader reader;
    reader.feed(wire);
    const auto r = reader.next();
    SSEGW_FUZZ_CHECK(r && r->type == ssegw::reply::kind::array && r->elements.size() == 3);
    SSEGW_FUZZ_CHECK(r->elements[1].str == a && r->elements[2].str == b);
    SSEGW_FUZZ_CHECK(!reader.next());
}

void check_url_list(std::string_view urls) {
    // Every URL of a list is one piece of the text, and masking keeps the pieces apart.
    std::size_t total = 0;
    const auto pieces = ssegw::split_redis_urls(urls);
    for (const auto piece : pieces) total += piece.size();
    SSEGW_FUZZ_CHECK(total + pieces.size() - 1 == urls.size());
    try {
        const auto eps = ssegw::parse_redis_url_list(urls);
        SSEGW_FUZZ_CHECK(eps.size() == pieces.size());
        SSEGW_FUZZ_CHECK(ssegw::split_redis_urls(ssegw::mask_redis_url(urls)).size() ==
                         pieces.size());
    } catch (const std::invalid_argument&) {}
}

void check_url(std::string_view url) {
    check_url_list(url);
    ssegw::redis_endpoint ep;
    try {
        ep = ssegw::parse_redis_url(url);
    } catch (const std::invalid_argument&) {
        return;
    }
    SSEGW_FUZZ_CHECK(!ep.host.empty() && ep.port != 0 && ep.db >= 0);
    // address_of: the server, never a credential, and it parses back to the same server.
    const std::string address = ssegw::address_of(ep);
    SSEGW_FUZZ_CHECK(address.find('@') == std::string::npos);
    ssegw::redis_endpoint again;
    try {
        again = ssegw::parse_redis_url("redis://" + address);
    } catch (const std::invalid_argument&) {
        SSEGW_FUZZ_CHECK(!"address_of output does not parse");
    }
    SSEGW_FUZZ_CHECK(again.host == ep.host && again.port == ep.port && again.password.empty());
    // mask_redis_url: the same server and user, the password replaced whole by "***".
    const std::string masked = ssegw::mask_redis_url(url);
    ssegw::redis_endpoint shown;
    try {
        shown = ssegw::parse_redis_url(masked);
    } catch (const std::invalid_argument&) {
        SSEGW_FUZZ_CHECK(!"mask_redis_url output of a valid URL does not parse");
    }
    SSEGW_FUZZ_CHECK(shown.host == ep.host && shown.port == ep.port && shown.db == ep.db);
    SSEGW_FUZZ_CHECK(shown.username == ep.username);
    SSEGW_FUZZ_CHECK(shown.password == (ep.password.empty() ? "" : "***"));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
    check_reader(data[0], stream);
    check_round_trip(stream.substr(0, stream.size() / 2), stream.substr(stream.size() / 2));
    check_url(stream);
    return 0;
}
