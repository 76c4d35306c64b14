#include "ssegw/core/channel.hpp"

#include <cstdint>

namespace ssegw {

bool is_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_name_bytes) return false;
    // Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF): names end up
    // in JSON (history-truncated notices, logs), which cannot carry broken sequences.
    for (std::size_t i = 0; i < name.size();) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (i + len > name.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(name[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += len;
    }
    return true;
}

std::string user_channel(std::string_view user_id) {
    std::string out;
    out.reserve(5 + user_id.size());
    out.append("user:").append(user_id);
    return out;
}

std::string topic_channel(std::string_view topic) {
    std::string out;
    out.reserve(6 + topic.size());
    out.append("topic:").append(topic);
    return out;
}

std::optional<channel_kind> kind_of(std::string_view channel) noexcept {
    if (channel == broadcast_channel) return channel_kind::broadcast;
    if (channel.starts_with("user:") && is_valid_name(channel.substr(5))) return channel_kind::user;
    if (channel.starts_with("topic:") && is_valid_name(channel.substr(6)))
        return channel_kind::topic;
    return std::nullopt;
}

std::optional<std::string_view> strip_prefix(std::string_view redis_channel,
                                             std::string_view prefix) noexcept {
    if (!redis_channel.starts_with(prefix)) return std::nullopt;
    auto name = redis_channel.substr(prefix.size());
    if (!kind_of(name)) return std::nullopt;
    return name;
}

} // namespace ssegw
