#include "ssegw/sse/simple_envelope.hpp"

namespace ssegw {

namespace {

class reader {
public:
    explicit reader(std::string_view text) : text_(text) {}

    void skip_space() noexcept {
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            ++pos_;
        }
    }
    bool at_end() const noexcept { return pos_ == text_.size(); }
    bool take(char c) noexcept {
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    // A string of printable ASCII without escapes; false for anything else (the caller falls
    // back to the full parser, which handles escapes and validates UTF-8).
    bool simple_string(std::string_view& out) noexcept {
        if (!take('"')) return false;
        const std::size_t start = pos_;
        for (; pos_ < text_.size(); ++pos_) {
            const auto c = static_cast<unsigned char>(text_[pos_]);
            if (c == '"') {
                out = text_.substr(start, pos_ - start);
                ++pos_;
                return true;
            }
            if (c < 0x20 || c > 0x7e || c == '\\') return false;
        }
        return false; // unterminated
    }

    // JSON's grammar for a non-negative integer (no sign, fraction, exponent or leading zero),
    // at most 19 digits so it fits a uint64 exactly.
    bool small_unsigned(std::uint64_t& out) noexcept {
        const std::size_t start = pos_;
        std::uint64_t v = 0;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            v = v * 10 + static_cast<std::uint64_t>(text_[pos_] - '0');
            ++pos_;
        }
        const std::size_t digits = pos_ - start;
        if (digits == 0 || digits > 19 || (digits > 1 && text_[start] == '0')) return false;
        // A fraction or exponent makes it a JSON number of another kind.
        if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))
            return false;
        out = v;
        return true;
    }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
};

} // namespace

std::optional<simple_envelope> read_simple_envelope(std::string_view payload) noexcept {
    reader r(payload);
    simple_envelope env;
    bool has_data = false;
    r.skip_space();
    if (!r.take('{')) return std::nullopt;
    r.skip_space();
    if (r.take('}')) return std::nullopt; // {}: no data
    for (;;) {
        std::string_view name;
        if (!r.simple_string(name)) return std::nullopt;
        r.skip_space();
        if (!r.take(':')) return std::nullopt;
        r.skip_space();
        std::string_view text;
        if (name == "data") {
            if (has_data || !r.simple_string(text)) return std::nullopt;
            env.data = text;
            has_data = true;
        } else if (name == "event") {
            if (env.event || !r.simple_string(text)) return std::nullopt;
            env.event = text;
        } else if (name == "id") {
            if (env.id || !r.simple_string(text)) return std::nullopt;
            env.id = text;
        } else if (name == "retry") {
            std::uint64_t ms = 0;
            if (env.retry || !r.small_unsigned(ms)) return std::nullopt;
            env.retry = ms;
        } else {
            return std::nullopt;
        }
        r.skip_space();
        if (r.take(',')) {
            r.skip_space();
            continue;
        }
        if (!r.take('}')) return std::nullopt;
        break;
    }
    r.skip_space();
    if (!r.at_end() || !has_data) return std::nullopt;
    return env;
}

} // namespace ssegw
