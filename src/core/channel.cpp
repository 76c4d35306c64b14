#include "ssegw/core/channel.hpp"

namespace ssegw {

bool is_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_name_bytes) return false;
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f) return false;
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
    if (channel.starts_with("topic:") && is_valid_name(channel.substr(6))) return channel_kind::topic;
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
