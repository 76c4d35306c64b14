#include "ssegw/shard/composite_position.hpp"

#include <cstring>

namespace ssegw {

namespace {

constexpr std::string_view tail_head = "id: ";
constexpr std::string_view tail_end = "\n\n";

} // namespace

composite_position::composite_position(const std::vector<std::string>& channels,
                                       const std::vector<channel_position>& start) {
    components_.reserve(channels.size());
    std::string text(tail_head);
    text += "2:";
    std::size_t named = 0;
    for (std::size_t i = 0; i < channels.size(); ++i) {
        component c;
        c.hash = cursor_hash(channels[i]);
        c.at = i < start.size() ? start[i] : channel_position{};
        bool collides = false;
        for (std::size_t j = 0; j < i && !collides; ++j) collides = components_[j].hash == c.hash;
        if (!collides && named < cluster_cursor::max_components) {
            if (named++ != 0) text.push_back(',');
            text += to_base36(c.hash);
            text += '.';
            char buf[max_position_text];
            const auto n = write_position(buf, c.at);
            c.text_at = static_cast<std::uint16_t>(text.size());
            c.text_size = static_cast<std::uint16_t>(n);
            text.append(buf, n);
        }
        components_.push_back(c);
    }
    text += tail_end;
    // Room for a few sequences to gain a digit without a reallocation, no more: the text is kept
    // for the stream's life.
    tail_.reserve(text.size() + 8);
    tail_ = text;
}

bool composite_position::advance(std::size_t i, const channel_position& at) {
    if (i >= components_.size() || !(components_[i].at < at)) return false;
    auto& c = components_[i];
    c.at = at;
    if (c.text_size == 0) return true; // left out of the id
    char buf[max_position_text];
    const auto n = write_position(buf, at);
    if (n == c.text_size) {
        std::memcpy(tail_.data() + c.text_at, buf, n); // the usual case: same length
        return true;
    }
    // A digit more (or, after a new epoch, fewer): the text after it moves.
    tail_.replace(c.text_at, c.text_size, buf, n);
    const auto old_size = c.text_size;
    c.text_size = static_cast<std::uint16_t>(n);
    for (std::size_t j = i + 1; j < components_.size(); ++j)
        components_[j].text_at = static_cast<std::uint16_t>(components_[j].text_at + n - old_size);
    return true;
}

std::string_view composite_position::id() const noexcept {
    std::string_view t(tail_);
    return t.substr(tail_head.size(), t.size() - tail_head.size() - tail_end.size());
}

frame composite_position::id_tail() const { return std::make_shared<const std::string>(tail_); }

} // namespace ssegw
