#pragma once
// The tokens POST /disconnect revoked, as one shard sees them: a user's tokens issued at or
// before a time, and single tokens by jti, each until its end. Checked once per handshake in
// O(1) (two hash lookups); each shard keeps its own copy, fed by the control loop, so the
// check takes no lock. Bounded: beyond max_entries a new record is refused (and counted).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "ssegw/core/control_message.hpp"
#include "ssegw/core/string_map.hpp"

namespace ssegw {

class revocation_list {
public:
    /// Records far beyond any real use (each is one revoked user or token); what protects
    /// memory from a flood of messages on the control channel.
    static constexpr std::size_t max_entries = 1'000'000;

    /// Records what `m` revokes (nothing for a plain disconnect). Returns false when the list
    /// is full and the record was not kept.
    bool add(const control_message& m);

    /// True when a token of `user` with this iat (nullopt: the token has none) and jti (empty:
    /// none) is revoked at `now`.
    bool refuses(std::string_view user, std::optional<std::int64_t> issued_at, std::string_view jti,
                 std::int64_t now) const;

    /// Forgets records that ended before `now` (the shard calls it from its tick).
    void expire(std::int64_t now);

    std::size_t size() const noexcept { return users_.size() + jtis_.size(); }

private:
    struct user_record {
        std::int64_t issued_up_to; ///< tokens with iat <= this are refused
        std::int64_t until;
    };
    string_map<user_record> users_;
    string_map<std::int64_t> jtis_; ///< jti -> until
};

} // namespace ssegw
