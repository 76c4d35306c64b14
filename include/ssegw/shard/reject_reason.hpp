#pragma once
// Why a subscribe request was refused: the handshake decides, its shard counts it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ssegw {

/// Why a subscribe request was refused; a label on ssegw_requests_rejected_total.
enum class reject_reason : std::uint8_t {
    bad_request,
    unauthorized,
    forbidden,
    not_found,
    method_not_allowed,
    too_many_per_user,
    headers_too_large,
    target_too_long,
    origin_not_allowed,
    instance_full,
    draining,
    revoked, ///< a token POST /disconnect revoked (401)
    count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(reject_reason::count_)>
    reject_reason_names = {"bad_request",       "unauthorized",       "forbidden",
                           "not_found",         "method_not_allowed", "too_many_per_user",
                           "headers_too_large", "target_too_long",    "origin_not_allowed",
                           "instance_full",     "draining",           "revoked"};

} // namespace ssegw
