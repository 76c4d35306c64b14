#pragma once
// GET /presence?user=<id>&user=<id>...: which users a backend asks about. Plain parsing, fuzzed
// (tests/fuzz/presence_fuzz.cpp): the query comes from whoever reaches the admin port.

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ssegw {

/// Most users one GET /presence may name: the answer is one Redis call, kept short.
inline constexpr std::size_t max_presence_users = 1000;

/// The users named by `user` parameters of `query` (the part after '?'), each a valid user id
/// (channel.hpp's is_valid_name), duplicates dropped, in first-seen order. Other parameters are
/// ignored. A string (the reason, for a 400) when none is named, one is malformed or empty, a
/// percent escape is bad, or more than max_presence_users are named.
std::variant<std::vector<std::string>, std::string> parse_presence_query(std::string_view query);

} // namespace ssegw
