// Fuzzes the admin port's POST /disconnect body parser and the control channel's message parser
// (anyone who can PUBLISH on the Redis reaches the second), and feeds what they accept to a
// revocation list. A body that is accepted must survive the trip through the channel unchanged:
// otherwise an instance would apply something else than what the backend asked for.

#include "fuzz_check.hpp"

#include "ssegw/core/channel.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/core/revocation_list.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

namespace {

void check_fields(const ssegw::control_message& m) {
    SSEGW_FUZZ_CHECK(!m.user.empty() || !m.jti.empty());
    SSEGW_FUZZ_CHECK(m.user.empty() || ssegw::is_valid_name(m.user));
    SSEGW_FUZZ_CHECK(m.jti.empty() || ssegw::is_valid_name(m.jti));
    SSEGW_FUZZ_CHECK(!m.reason.empty() && m.reason.size() <= ssegw::max_reason_bytes);
    SSEGW_FUZZ_CHECK(!m.revoke || !m.user.empty());
    SSEGW_FUZZ_CHECK(m.revokes() == (m.revoke || !m.jti.empty()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    constexpr std::int64_t now = 1764594933;
    ssegw::revocation_list list;

    auto body = ssegw::parse_disconnect_request(text, now, 86400);
    if (auto* m = std::get_if<ssegw::control_message>(&body)) {
        check_fields(*m);
        auto back = ssegw::parse_control_message(ssegw::to_json(*m));
        SSEGW_FUZZ_CHECK(back.has_value());
        SSEGW_FUZZ_CHECK(back->user == m->user && back->jti == m->jti &&
                         back->reason == m->reason && back->revoke == m->revoke &&
                         back->at == m->at && back->until == m->until);
        SSEGW_FUZZ_CHECK(list.add(*m));
        if (m->revoke) SSEGW_FUZZ_CHECK(list.refuses(m->user, now, "", now));
        if (!m->jti.empty()) SSEGW_FUZZ_CHECK(list.refuses("someone", now + 1, m->jti, now));
    } else {
        SSEGW_FUZZ_CHECK(!std::get<std::string>(body).empty());
    }

    if (auto m = ssegw::parse_control_message(text)) {
        check_fields(*m);
        SSEGW_FUZZ_CHECK(list.add(*m));
        list.expire(m->until);
        list.expire(now);
    }
    return 0;
}
