#pragma once
// The life of a subscriber connection before it is a stream: read one request head (bounded in
// bytes and time), check path, method, query, credentials and limits, then either answer with an
// HTTP error, answer "come back later" (200 + retry + close), or hand the bare socket to a new
// session on the same shard. Everything the handshake needed is freed when it ends.

#include <memory>

#include "ssegw/shard/shard_socket.hpp"

namespace ssegw {

class authenticator;
class shard;

/// Runs the handshake of an accepted socket on its shard (call on the shard thread, after
/// shard::reserve_slot()).
void start_handshake(shard& owner, const authenticator& auth, shard_socket socket);

} // namespace ssegw
