#pragma once
// RESP2 encoding and decoding. hiredis is used only as a codec (redisFormatCommandArgv and
// redisReader): its connection and async layers have traps we avoid (see DESIGN.md), so the
// sockets belong to Asio and this header is all the rest of the gateway sees of hiredis.

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

/// One decoded RESP2 reply. `str` holds bulk/status/error text, `integer` an integer reply,
/// `elements` an array's members. A nil bulk string and a nil array are both `kind::nil`.
struct reply {
    enum class kind { string, status, error, integer, nil, array };
    kind type = kind::nil;
    std::string str;
    long long integer = 0;
    std::vector<reply> elements;

    /// True when this is an array whose first element is a string equal to `name`
    /// (case-sensitive, as Redis sends push kinds in lower case).
    bool is_push(std::string_view name) const noexcept;
};

/// Thrown by resp_reader on malformed or oversized input. The stream cannot be resynchronised
/// after it: the connection that produced it must be closed.
class resp_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Largest reply the reader accepts, in wire bytes; also the largest single bulk string.
inline constexpr std::size_t max_reply_bytes = 64u * 1024 * 1024;
/// Most array elements (summed over all nesting levels) one reply may declare; bounds the memory
/// an adversarial header can make us allocate before its data arrives.
inline constexpr std::size_t max_reply_elements = 1u << 20;
/// Deepest array nesting accepted (hiredis 0.14 itself stops at 7).
inline constexpr int max_reply_depth = 7;

/// Encodes a command as a RESP array of bulk strings (binary-safe).
std::string encode_command(std::span<const std::string_view> args);
/// Convenience overload for literal argument lists: encode_command({"PUBLISH", ch, payload}).
std::string encode_command(std::initializer_list<std::string_view> args);

/// Incremental RESP2 parser over hiredis' redisReader. Feed bytes as they arrive, then call
/// next() until it returns nullopt.
class resp_reader {
public:
    resp_reader();
    ~resp_reader();
    resp_reader(const resp_reader&) = delete;
    resp_reader& operator=(const resp_reader&) = delete;
    resp_reader(resp_reader&&) noexcept;
    resp_reader& operator=(resp_reader&&) noexcept;

    /// Appends received bytes (copied into the reader's buffer).
    void feed(std::string_view bytes);
    /// Next complete reply, or nullopt when more bytes are needed. Throws resp_error on a
    /// protocol error, an oversized reply or excessive nesting; it keeps throwing afterwards.
    std::optional<reply> next();
    /// Drops all buffered bytes and any error, as for a fresh connection.
    void reset();

private:
    struct state;
    std::unique_ptr<state> state_;
};

} // namespace ssegw
