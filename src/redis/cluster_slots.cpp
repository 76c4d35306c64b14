#include "ssegw/redis/cluster_slots.hpp"

#include <limits>

namespace ssegw {

namespace {

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis Cluster specifies.
constexpr std::array<std::uint16_t, 256> make_crc_table() {
    std::array<std::uint16_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t crc = i << 8;
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
        table[i] = static_cast<std::uint16_t>(crc);
    }
    return table;
}

constexpr auto crc_table = make_crc_table();

std::uint16_t crc16(std::string_view bytes) noexcept {
    std::uint16_t crc = 0;
    for (unsigned char c : bytes)
        crc = static_cast<std::uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ c) & 0xff]);
    return crc;
}

/// The value of `field` in a flat field/value list, or nullptr.
const reply* field_of(const reply& list, std::string_view field) {
    for (std::size_t i = 0; i + 1 < list.elements.size(); i += 2)
        if (list.elements[i].str == field) return &list.elements[i + 1];
    return nullptr;
}

std::optional<std::uint16_t> as_port(const reply* r) {
    if (!r || r->type != reply::kind::integer || r->integer < 0 ||
        r->integer > std::numeric_limits<std::uint16_t>::max())
        return std::nullopt;
    return static_cast<std::uint16_t>(r->integer);
}

std::string as_text(const reply* r) {
    return r && (r->type == reply::kind::string || r->type == reply::kind::status) ? r->str
                                                                                   : std::string();
}

} // namespace

std::uint16_t key_slot(std::string_view key) noexcept {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return crc16(key) & (cluster_slot_count - 1);
}

const cluster_node* cluster_shard::primary() const {
    for (const auto& n : nodes)
        if (n.primary) return &n;
    return nullptr;
}

std::optional<cluster_slot_map> cluster_slot_map::from_shards_reply(const reply& r,
                                                                    std::string& why) {
    if (r.type != reply::kind::array) {
        why =
            r.type == reply::kind::error && !r.str.empty() ? r.str : "CLUSTER SHARDS: not an array";
        return std::nullopt;
    }
    constexpr auto unowned = std::numeric_limits<std::uint16_t>::max();
    cluster_slot_map map;
    map.owner_.fill(unowned);
    for (const auto& s : r.elements) {
        if (s.type != reply::kind::array) {
            why = "CLUSTER SHARDS: a shard is not a list";
            return std::nullopt;
        }
        cluster_shard shard;
        const reply* slots = field_of(s, "slots");
        const reply* nodes = field_of(s, "nodes");
        if (!slots || !nodes || slots->type != reply::kind::array ||
            nodes->type != reply::kind::array || slots->elements.size() % 2 != 0) {
            why = "CLUSTER SHARDS: a shard without slots or nodes";
            return std::nullopt;
        }
        for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
            const auto& lo = slots->elements[i];
            const auto& hi = slots->elements[i + 1];
            if (lo.type != reply::kind::integer || hi.type != reply::kind::integer ||
                lo.integer < 0 || hi.integer < lo.integer || hi.integer >= cluster_slot_count) {
                why = "CLUSTER SHARDS: a bad slot range";
                return std::nullopt;
            }
            shard.ranges.emplace_back(static_cast<std::uint16_t>(lo.integer),
                                      static_cast<std::uint16_t>(hi.integer));
        }
        for (const auto& n : nodes->elements) {
            if (n.type != reply::kind::array) continue;
            cluster_node node;
            node.id = as_text(field_of(n, "id"));
            node.ip = as_text(field_of(n, "ip"));
            node.hostname = as_text(field_of(n, "hostname"));
            node.port = as_port(field_of(n, "port")).value_or(0);
            node.tls_port = as_port(field_of(n, "tls-port")).value_or(0);
            node.primary = as_text(field_of(n, "role")) == "master";
            node.online = as_text(field_of(n, "health")) == "online";
            shard.nodes.push_back(std::move(node));
        }
        // A shard that owns no slots (an empty new primary, a replica set being added) is
        // kept out of the map: nothing is routed to it.
        if (shard.ranges.empty()) continue;
        const auto* primary = shard.primary();
        if (!primary || !primary->online) {
            why = "CLUSTER SHARDS: slots " + std::to_string(shard.ranges.front().first) + "-" +
                  std::to_string(shard.ranges.front().second) + " have no online primary";
            return std::nullopt;
        }
        const auto index = static_cast<std::uint16_t>(map.shards_.size());
        for (const auto& [lo, hi] : shard.ranges)
            for (std::uint32_t slot = lo; slot <= hi; ++slot) map.owner_[slot] = index;
        map.shards_.push_back(std::move(shard));
    }
    for (std::uint32_t slot = 0; slot < cluster_slot_count; ++slot) {
        if (map.owner_[slot] == unowned) {
            why = "CLUSTER SHARDS: slot " + std::to_string(slot) + " has no owner";
            return std::nullopt;
        }
    }
    return map;
}

} // namespace ssegw
