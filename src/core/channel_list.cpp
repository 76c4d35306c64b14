#include "ssegw/core/channel_list.hpp"

#include <limits>
#include <stdexcept>

namespace ssegw {

namespace {

constexpr std::size_t max_field = std::numeric_limits<std::uint16_t>::max();

void put_u16(char*& at, std::size_t v) noexcept {
    const auto n = static_cast<std::uint16_t>(v);
    std::memcpy(at, &n, sizeof n);
    at += sizeof n;
}

} // namespace

channel_list::channel_list(const std::vector<std::string>& names) {
    if (names.empty()) return;
    if (names.size() > max_field) throw std::length_error("channel_list: too many channels");
    std::size_t bytes = 2;
    for (const auto& n : names) {
        if (n.size() > max_field) throw std::length_error("channel_list: channel name too long");
        bytes += 2 + n.size();
    }
    block_ = std::make_unique_for_overwrite<char[]>(bytes);
    char* at = block_.get();
    put_u16(at, names.size());
    for (const auto& n : names) {
        put_u16(at, n.size());
        std::memcpy(at, n.data(), n.size());
        at += n.size();
    }
}

std::size_t channel_list::size() const noexcept {
    if (!block_) return 0;
    std::uint16_t n;
    std::memcpy(&n, block_.get(), sizeof n);
    return n;
}

channel_list::const_iterator channel_list::begin() const noexcept {
    if (!block_) return {};
    return {block_.get() + 2, size()};
}

std::size_t channel_list::index_of(std::string_view name) const noexcept {
    std::size_t i = 0;
    for (auto it = begin(); it != end(); ++it, ++i)
        if (*it == name) return i;
    return i;
}

std::vector<std::string> channel_list::to_vector() const {
    std::vector<std::string> out;
    out.reserve(size());
    for (auto name : *this) out.emplace_back(name);
    return out;
}

} // namespace ssegw
