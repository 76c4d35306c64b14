#pragma once
// The sessions of one channel on one shard, as the registry keeps them: one pointer-sized word.
// Most channels are one user's, held by one stream, and a registry slot per user is per-stream
// memory: the word is then that session itself, and only a channel held by two or more streams
// (a user's second tab, a topic, the broadcast) points (low bit set) to a vector of its own.
// A small_vector<session*, 1> took 32 bytes per slot for the same single pointer.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ssegw {

class session;

class session_list {
public:
    session_list() noexcept = default;
    /// Moves leave the source empty (the flat map moves its slots when it grows).
    session_list(session_list&& other) noexcept;
    session_list& operator=(session_list&& other) noexcept;
    session_list(const session_list&) = delete;
    session_list& operator=(const session_list&) = delete;
    ~session_list();

    session* const* begin() const noexcept { return many() ? many()->data() : &word_; }
    session* const* end() const noexcept { return begin() + size(); }
    std::size_t size() const noexcept {
        if (const auto* v = many()) return v->size();
        return word_ != nullptr ? 1 : 0;
    }
    bool empty() const noexcept { return size() == 0; }

    /// Adds s (not checked for being there already: the registry adds a session once).
    void push_back(session* s);
    /// Removes s; false when it is not in the list. Order is not kept (swap-and-pop).
    bool erase(session* s) noexcept;

private:
    using vector = std::vector<session*>;
    /// The vector, when the word points to one (sessions are at least 2-aligned, so their low
    /// bit is free to say which it is).
    vector* many() const noexcept {
        const auto bits = reinterpret_cast<std::uintptr_t>(word_);
        return (bits & 1) != 0 ? reinterpret_cast<vector*>(bits & ~std::uintptr_t{1}) : nullptr;
    }

    session* word_ = nullptr; ///< null (empty), the one session, or a tagged vector*
};

} // namespace ssegw
