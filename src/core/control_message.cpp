#include "ssegw/core/control_message.hpp"

#include <limits>

#include <nlohmann/json.hpp>

#include "ssegw/core/channel.hpp"

namespace ssegw {

namespace {

using json = nlohmann::json;

/// Latest time accepted in a message: far beyond any token, small enough to add to safely.
constexpr std::int64_t max_time = std::int64_t{1} << 40;

/// Shared by both parsers: user, jti and reason with their rules; empty string = fine.
std::string read_common(const json& doc, control_message& m) {
    if (auto it = doc.find("user"); it != doc.end()) {
        if (!it->is_string() || !is_valid_name(it->get_ref<const std::string&>()))
            return "\"user\" must be a user id (1..256 bytes of UTF-8, no control characters)";
        m.user = it->get<std::string>();
    }
    if (auto it = doc.find("jti"); it != doc.end()) {
        if (!it->is_string() || !is_valid_name(it->get_ref<const std::string&>()))
            return "\"jti\" must be a token id (1..256 bytes of UTF-8, no control characters)";
        m.jti = it->get<std::string>();
    }
    if (m.user.empty() && m.jti.empty()) return "name a \"user\" or a \"jti\"";
    if (auto it = doc.find("reason"); it != doc.end() && !it->is_null()) {
        if (!it->is_string()) return "\"reason\" must be a string";
        const auto& text = it->get_ref<const std::string&>();
        if (text.size() > max_reason_bytes)
            return "\"reason\" is longer than " + std::to_string(max_reason_bytes) + " bytes";
        if (text.find('\0') != std::string::npos) return "\"reason\" must not contain NUL";
        if (!text.empty()) m.reason = text;
    }
    return {};
}

std::optional<json> parse_object(std::string_view text) {
    auto doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
    return doc;
}

bool read_time(const json& doc, const char* key, std::int64_t& out) {
    auto it = doc.find(key);
    if (it == doc.end()) return true;
    if (!it->is_number_unsigned()) return false;
    const auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(max_time)) return false;
    out = static_cast<std::int64_t>(v);
    return true;
}

} // namespace

std::variant<control_message, std::string>
parse_disconnect_request(std::string_view body, std::int64_t now, std::uint32_t ttl) {
    auto doc = parse_object(body);
    if (!doc) return std::string("body must be a JSON object");
    for (const auto& item : doc->items()) {
        const auto& k = item.key();
        if (k != "user" && k != "jti" && k != "reason" && k != "revoke")
            return "unknown field \"" + k.substr(0, 64) +
                   "\" (expected \"user\", \"jti\", \"reason\", \"revoke\")";
    }
    control_message m;
    if (auto problem = read_common(*doc, m); !problem.empty()) return problem;
    if (auto it = doc->find("revoke"); it != doc->end()) {
        if (!it->is_boolean()) return std::string("\"revoke\" must be true or false");
        m.revoke = it->get<bool>();
    }
    if (m.revoke && m.user.empty())
        return std::string("\"revoke\" needs a \"user\" (a \"jti\" is always revoked)");
    m.at = now;
    if (m.revoke || !m.jti.empty()) m.until = now + ttl;
    return m;
}

std::string to_json(const control_message& m) {
    json doc = json::object();
    if (!m.user.empty()) doc["user"] = m.user;
    if (!m.jti.empty()) doc["jti"] = m.jti;
    doc["reason"] = m.reason;
    if (m.revoke) doc["revoke"] = true;
    doc["at"] = m.at;
    if (m.until != 0) doc["until"] = m.until;
    return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<control_message> parse_control_message(std::string_view text) {
    auto doc = parse_object(text);
    if (!doc) return std::nullopt;
    control_message m;
    if (!read_common(*doc, m).empty()) return std::nullopt;
    if (auto it = doc->find("revoke"); it != doc->end()) {
        if (!it->is_boolean()) return std::nullopt;
        m.revoke = it->get<bool>();
    }
    if (!read_time(*doc, "at", m.at) || !read_time(*doc, "until", m.until)) return std::nullopt;
    if (m.revoke && m.user.empty()) return std::nullopt;
    // A revocation without an end would last forever: refuse it rather than guess one.
    if ((m.revoke || !m.jti.empty()) && m.until == 0) return std::nullopt;
    // ...and an end on something that revokes nothing is not a message the gateway writes.
    if (!m.revoke && m.jti.empty() && m.until != 0) return std::nullopt;
    return m;
}

} // namespace ssegw
