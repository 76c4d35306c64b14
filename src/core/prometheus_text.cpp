#include "ssegw/core/prometheus_text.hpp"

#include <charconv>
#include <cmath>

namespace ssegw {

namespace {

template <class T>
void append_number(std::string& out, T value) {
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
    out.append(buf, end);
}

void append_double(std::string& out, double value) {
    if (std::isnan(value))
        out.append("NaN");
    else if (std::isinf(value))
        out.append(value > 0 ? "+Inf" : "-Inf");
    else {
        // Shortest round-trip digits, in plain notation when it fits (le="0.0005", not the
        // shorter "5e-04" that other exporters never write); scientific only for extremes.
        char buf[32];
        auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
        if (res.ec != std::errc{}) res = std::to_chars(buf, buf + sizeof buf, value);
        out.append(buf, res.ptr);
    }
}

// HELP text escapes only backslash and newline in this format.
void append_help(std::string& out, std::string_view help) {
    for (char c : help) {
        if (c == '\\')
            out.append("\\\\");
        else if (c == '\n')
            out.append("\\n");
        else
            out.push_back(c);
    }
}

// `name{labels} ` or `name ` — the caller appends the value and the newline.
void append_series(std::string& out, std::string_view name, std::string_view suffix,
                   std::string_view labels) {
    out.append(name).append(suffix);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.push_back(' ');
}

} // namespace

std::string& prometheus_text::family_text(std::string_view name, std::string_view help,
                                          std::string_view type) {
    // A scrape has a few dozen families: a linear scan beats hashing here.
    for (auto& f : families_)
        if (f.name == name) return f.text;
    auto& f = families_.emplace_back(family{std::string(name), {}});
    f.text.append("# HELP ").append(name).push_back(' ');
    append_help(f.text, help);
    f.text.append("\n# TYPE ").append(name).append(" ").append(type).push_back('\n');
    return f.text;
}

void prometheus_text::counter(std::string_view name, std::string_view help, std::uint64_t value,
                              std::string_view labels) {
    auto& out = family_text(name, help, "counter");
    append_series(out, name, {}, labels);
    append_number(out, value);
    out.push_back('\n');
}

void prometheus_text::gauge(std::string_view name, std::string_view help, double value,
                            std::string_view labels) {
    auto& out = family_text(name, help, "gauge");
    append_series(out, name, {}, labels);
    append_double(out, value);
    out.push_back('\n');
}

void prometheus_text::gauge(std::string_view name, std::string_view help, std::int64_t value,
                            std::string_view labels) {
    auto& out = family_text(name, help, "gauge");
    append_series(out, name, {}, labels);
    append_number(out, value);
    out.push_back('\n');
}

void prometheus_text::histogram_lines(std::string_view name, std::string_view help,
                                      const double* bounds, const std::uint64_t* counts,
                                      std::size_t finite_buckets, double sum,
                                      std::string_view labels) {
    auto& out = family_text(name, help, "histogram");
    std::string bucket_labels(labels);
    if (!bucket_labels.empty()) bucket_labels.push_back(',');
    const auto prefix_len = bucket_labels.size();

    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= finite_buckets; ++i) {
        cumulative += counts[i];
        bucket_labels.resize(prefix_len);
        bucket_labels.append("le=\"");
        if (i < finite_buckets)
            append_double(bucket_labels, bounds[i]);
        else
            bucket_labels.append("+Inf");
        bucket_labels.push_back('"');
        append_series(out, name, "_bucket", bucket_labels);
        append_number(out, cumulative);
        out.push_back('\n');
    }
    append_series(out, name, "_sum", labels);
    append_double(out, sum);
    out.push_back('\n');
    append_series(out, name, "_count", labels);
    append_number(out, cumulative);
    out.push_back('\n');
}

std::string prometheus_text::str() && {
    std::size_t size = 0;
    for (const auto& f : families_) size += f.text.size();
    std::string out;
    out.reserve(size);
    for (const auto& f : families_) out.append(f.text);
    return out;
}

} // namespace ssegw
