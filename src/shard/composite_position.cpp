#include "ssegw/shard/composite_position.hpp"

namespace ssegw {

composite_position::composite_position(const std::vector<std::string>& channels,
                                       const std::vector<channel_position>& start) {
    components_.reserve(channels.size());
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto h = cursor_hash(channels[i]);
        for (std::size_t j = 0; j < i && i < 64; ++j)
            if (components_[j].hash == h) left_out_ |= std::uint64_t{1} << i;
        components_.push_back({h, i < start.size() ? start[i] : channel_position{}});
    }
}

bool composite_position::advance(std::size_t i, const channel_position& at) noexcept {
    if (i >= components_.size() || !(components_[i].at < at)) return false;
    components_[i].at = at;
    return true;
}

std::string composite_position::format() const {
    std::string out;
    append_to(out);
    return out;
}

frame composite_position::id_tail() const {
    std::string out;
    out.reserve(4 + 2 + components_.size() * 19 + 2);
    out += "id: ";
    append_to(out);
    out += "\n\n";
    return std::make_shared<const std::string>(std::move(out));
}

void composite_position::append_to(std::string& out) const {
    out.reserve(out.size() + 2 + components_.size() * 19);
    out += "2:";
    bool first = true;
    for (std::size_t i = 0; i < components_.size(); ++i) {
        if (i < 64 && (left_out_ >> i & 1) != 0) continue;
        if (!first) out.push_back(',');
        first = false;
        append_component(out, components_[i]);
    }
}

} // namespace ssegw
