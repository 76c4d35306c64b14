#include "ssegw/sse/frame.hpp"

#include "ssegw/sse/simple_envelope.hpp"

#include <charconv>
#include <utility>

#include <nlohmann/json.hpp>

namespace ssegw {

namespace {

using json = nlohmann::json;

constexpr std::string_view event_prefix = "event: ";
constexpr std::string_view id_prefix = "id: ";
constexpr std::string_view retry_prefix = "retry: ";
constexpr std::string_view data_prefix = "data: ";
constexpr std::string_view comment_prefix = ": ";

// EventSource ends a field at CR, LF or CRLF, so all three must split data into lines; a value
// that can't be split (event, id) must not contain them, and browsers ignore an id holding NUL.
constexpr std::string_view line_breaks = "\r\n";
constexpr std::string_view forbidden_in_field{"\r\n\0", 3};

// string_view::find_first_of calls memchr on its set once per byte of the text, which made
// these scans a fifth of a unicast event's user-space instructions (callgrind); one pass over
// the bytes is all they need.
std::size_t find_any_of(std::string_view text, std::string_view set) noexcept {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        for (char s : set)
            if (c == s) return i;
    }
    return std::string_view::npos;
}

bool is_clean_field(std::string_view value) noexcept {
    return find_any_of(value, forbidden_in_field) == std::string_view::npos;
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
    for (;;) {
        const auto br = find_any_of(text, line_breaks);
        if (br == std::string_view::npos) {
            f(text);
            return;
        }
        f(text.substr(0, br));
        const bool crlf = text[br] == '\r' && br + 1 < text.size() && text[br + 1] == '\n';
        text.remove_prefix(br + (crlf ? 2 : 1));
    }
}

// Sizing and writing walk the text twice so the block is allocated exactly once.
std::size_t lines_size(std::string_view prefix, std::string_view text) {
    std::size_t n = 0;
    for_each_line(text, [&](std::string_view line) { n += prefix.size() + line.size() + 1; });
    return n;
}

void append_lines(std::string& out, std::string_view prefix, std::string_view text) {
    for_each_line(text,
                  [&](std::string_view line) { out.append(prefix).append(line).push_back('\n'); });
}

void append_field(std::string& out, std::string_view prefix, std::string_view value) {
    out.append(prefix).append(value).push_back('\n');
}

std::size_t field_size(std::string_view prefix, const std::optional<std::string_view>& value) {
    return value ? prefix.size() + value->size() + 1 : 0;
}

frame share(std::string&& block) { return std::make_shared<const std::string>(std::move(block)); }

bool is_json_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Most non-object payloads (plain text) are recognised here without building a JSON document.
bool looks_like_object(std::string_view payload) noexcept {
    for (char c : payload)
        if (!is_json_space(c)) return c == '{';
    return false;
}

// Bracket depth outside strings; cheap compared with the parse it guards.
bool nesting_within(std::string_view payload, std::size_t limit) noexcept {
    std::size_t depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : payload) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > limit) return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return true;
}

std::string compact(const json& value) {
    // replace: never throw on the data plane, even if a string somehow holds invalid UTF-8.
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

const json* member(const json& object, const char* key) {
    const auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr; // null means "not given"
    return &*it;
}

// The lines of one block, each optional but data; the views point into the payload or into
// storage the caller keeps alive until assemble() returns.
struct block_fields {
    std::optional<std::string_view> event;
    std::optional<std::string_view> id;
    std::optional<std::string_view> retry;
    std::string_view data;
};

frame_result assemble(const block_fields& f) {
    std::string block;
    block.reserve(field_size(event_prefix, f.event) + field_size(id_prefix, f.id) +
                  field_size(retry_prefix, f.retry) + lines_size(data_prefix, f.data) + 1);
    if (f.event) append_field(block, event_prefix, *f.event);
    if (f.id) append_field(block, id_prefix, *f.id);
    if (f.retry) append_field(block, retry_prefix, *f.retry);
    append_lines(block, data_prefix, f.data);
    block.push_back('\n');
    return {share(std::move(block)), std::nullopt, f.id.has_value()};
}

std::string_view format_retry(std::uint64_t ms, char (&buf)[24]) {
    const auto end = std::to_chars(buf, buf + sizeof buf, ms).ptr;
    return std::string_view(buf, static_cast<std::size_t>(end - buf));
}

frame_result build_from_object(const json& doc, const json& data, std::string_view forced_id) {
    block_fields f;
    if (const json* e = member(doc, "event")) {
        if (!e->is_string()) return {nullptr, drop_reason::bad_event_name};
        const auto& name = e->get_ref<const std::string&>();
        if (!is_clean_field(name)) return {nullptr, drop_reason::bad_event_name};
        // An empty name means "message" to EventSource anyway; the line would be noise.
        if (!name.empty()) f.event = name;
    }

    std::string numeric_id;
    // The payload's own id is checked even when the gateway's position replaces it: a payload
    // is dropped for the same reasons whichever way it was published.
    if (const json* i = member(doc, "id")) {
        if (i->is_string()) {
            const auto& text = i->get_ref<const std::string&>();
            if (!is_clean_field(text)) return {nullptr, drop_reason::bad_id};
            f.id = text;
        } else if (i->is_number()) {
            numeric_id = compact(*i);
            f.id = numeric_id;
        } else {
            return {nullptr, drop_reason::bad_id};
        }
    }
    if (!forced_id.empty()) f.id = forced_id;

    char retry_buf[24];
    if (const json* r = member(doc, "retry")) {
        std::uint64_t ms = 0;
        if (r->is_number_unsigned())
            ms = r->get<std::uint64_t>();
        else if (r->is_number_integer() && r->get<std::int64_t>() >= 0)
            ms = static_cast<std::uint64_t>(r->get<std::int64_t>());
        else
            return {nullptr, drop_reason::bad_retry};
        f.retry = format_retry(ms, retry_buf);
    }

    // A compact dump never holds a raw line break (JSON escapes them), so it stays on one line.
    std::string dumped;
    if (data.is_string()) {
        f.data = data.get_ref<const std::string&>();
    } else {
        dumped = compact(data);
        f.data = dumped;
    }
    return assemble(f);
}

// The same block from read_simple_envelope's members: printable ASCII without escapes, so
// every value is already a clean field and the data a single line.
frame_result build_from_simple(const simple_envelope& env, std::string_view forced_id) {
    block_fields f;
    if (env.event && !env.event->empty()) f.event = env.event;
    f.id = env.id;
    if (!forced_id.empty()) f.id = forced_id;
    char retry_buf[24];
    if (env.retry) f.retry = format_retry(*env.retry, retry_buf);
    f.data = env.data;
    return assemble(f);
}

frame_result build_verbatim(std::string_view payload, std::string_view forced_id) {
    std::optional<std::string_view> id;
    if (!forced_id.empty()) id = forced_id;
    std::string block;
    block.reserve(field_size(id_prefix, id) + lines_size(data_prefix, payload) + 1);
    if (id) append_field(block, id_prefix, *id);
    append_lines(block, data_prefix, payload);
    block.push_back('\n');
    return {share(std::move(block)), std::nullopt, id.has_value()};
}

} // namespace

std::string_view to_string(drop_reason reason) noexcept {
    switch (reason) {
    case drop_reason::too_large: return "too_large";
    case drop_reason::bad_event_name: return "bad_event_name";
    case drop_reason::bad_id: return "bad_id";
    case drop_reason::bad_retry: return "bad_retry";
    }
    return "unknown";
}

std::string_view explain(drop_reason reason) noexcept {
    switch (reason) {
    case drop_reason::too_large: return "payload larger than sse.max_event_bytes";
    case drop_reason::bad_event_name: return "\"event\" must be a string without CR, LF or NUL";
    case drop_reason::bad_id: return "\"id\" must be a string or number without CR, LF or NUL";
    case drop_reason::bad_retry: return "\"retry\" must be a non-negative integer";
    }
    return "unknown";
}

namespace {

frame_result build(std::string_view payload, std::size_t max_payload_bytes,
                   std::string_view forced_id, bool simple_reader) {
    if (payload.size() > max_payload_bytes) return {nullptr, drop_reason::too_large};
    if (!is_clean_field(forced_id)) return {nullptr, drop_reason::bad_id};

    if (simple_reader)
        if (const auto env = read_simple_envelope(payload))
            return build_from_simple(*env, forced_id);
    if (looks_like_object(payload) && nesting_within(payload, max_payload_json_depth)) {
        // No exceptions on the data plane: a parse error yields a "discarded" value instead.
        const json doc = json::parse(payload.begin(), payload.end(), nullptr, false);
        if (doc.is_object()) {
            const auto data = doc.find("data");
            if (data != doc.end()) return build_from_object(doc, *data, forced_id);
        }
    }
    return build_verbatim(payload, forced_id);
}

} // namespace

frame_result build_frame(std::string_view payload, std::size_t max_payload_bytes,
                         std::string_view forced_id) {
    return build(payload, max_payload_bytes, forced_id, true);
}

frame_result build_frame_fully_parsed(std::string_view payload, std::size_t max_payload_bytes,
                                      std::string_view forced_id) {
    return build(payload, max_payload_bytes, forced_id, false);
}

frame make_comment_frame(std::string_view text) {
    std::string block;
    block.reserve(lines_size(comment_prefix, text) + 1);
    append_lines(block, comment_prefix, text);
    block.push_back('\n');
    return share(std::move(block));
}

frame make_event_frame(std::string_view event, std::string_view data) {
    if (!is_clean_field(event) || event.empty()) return nullptr;
    std::string block;
    block.reserve(event_prefix.size() + event.size() + 1 + lines_size(data_prefix, data) + 1);
    append_field(block, event_prefix, event);
    append_lines(block, data_prefix, data);
    block.push_back('\n');
    return share(std::move(block));
}

frame make_retry_frame(std::uint32_t retry_ms) {
    char buf[16];
    const auto end = std::to_chars(buf, buf + sizeof buf, retry_ms).ptr;
    const std::string_view digits(buf, static_cast<std::size_t>(end - buf));
    std::string block;
    block.reserve(retry_prefix.size() + digits.size() + 2);
    append_field(block, retry_prefix, digits);
    block.push_back('\n');
    return share(std::move(block));
}

frame make_position_frame(std::string_view id) {
    if (!is_clean_field(id)) return nullptr;
    constexpr std::string_view empty_data = "data:\n";
    std::string block;
    block.reserve(event_prefix.size() + position_event_name.size() + 1 + id_prefix.size() +
                  id.size() + 1 + empty_data.size() + 1);
    append_field(block, event_prefix, position_event_name);
    append_field(block, id_prefix, id);
    block.append(empty_data);
    block.push_back('\n');
    return share(std::move(block));
}

} // namespace ssegw
