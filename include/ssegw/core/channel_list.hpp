#pragma once
// A stream's channel names, kept for its whole life in one heap block: a 16-bit count, then each
// name as a 16-bit length and its bytes. An idle stream is mostly this and its socket, so the
// layout is per-stream memory: three short names ("user:u12345", "broadcast", "topic:t3") take
// a 48-byte malloc chunk here, against 112 for a std::vector of three std::strings (and one
// more block per name past 15 bytes), and the list is 8 bytes in the session instead of 24.
// Immutable once built; read as string_views.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

class channel_list {
public:
    /// Forward iteration over the names, in the order they were given.
    class const_iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::string_view;
        using difference_type = std::ptrdiff_t;
        using reference = std::string_view;
        using pointer = void;

        const_iterator() = default;
        std::string_view operator*() const noexcept { return {at_ + 2, length()}; }
        const_iterator& operator++() noexcept {
            at_ += 2 + length();
            --left_;
            return *this;
        }
        const_iterator operator++(int) noexcept {
            auto before = *this;
            ++*this;
            return before;
        }
        /// Iterators of one list compare by how many names are left.
        bool operator==(const const_iterator& other) const noexcept { return left_ == other.left_; }

    private:
        friend class channel_list;
        const_iterator(const char* at, std::size_t left) noexcept : at_(at), left_(left) {}
        std::size_t length() const noexcept {
            std::uint16_t n;
            std::memcpy(&n, at_, sizeof n);
            return n;
        }
        const char* at_ = nullptr;
        std::size_t left_ = 0;
    };

    channel_list() noexcept = default;
    /// Throws std::length_error past 65,535 names or a name past 65,535 bytes (far beyond
    /// sse.max_topics and max_name_bytes, which the handshake enforces first).
    explicit channel_list(const std::vector<std::string>& names);

    std::size_t size() const noexcept;
    bool empty() const noexcept { return size() == 0; }
    const_iterator begin() const noexcept;
    const_iterator end() const noexcept { return {}; }
    /// The first name; the list must not be empty.
    std::string_view front() const noexcept { return *begin(); }
    /// Position of `name` in the list, or size() when it is not there.
    std::size_t index_of(std::string_view name) const noexcept;
    /// A copy as strings, for what outlives the stream or crosses threads (a history read).
    std::vector<std::string> to_vector() const;

private:
    std::unique_ptr<char[]> block_;
};

} // namespace ssegw
