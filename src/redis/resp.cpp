#include "ssegw/redis/resp.hpp"

#include <hiredis/hiredis.h>

#include <cstring>
#include <limits>

namespace ssegw {

bool reply::is_push(std::string_view name) const noexcept {
    return type == kind::array && !elements.empty() && elements[0].type == kind::string &&
           elements[0].str == name;
}

std::string encode_command(std::span<const std::string_view> args) {
    if (args.empty() || args.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw std::invalid_argument("encode_command: bad argument count");
    std::vector<const char*> argv;
    std::vector<std::size_t> argvlen;
    argv.reserve(args.size());
    argvlen.reserve(args.size());
    for (auto a : args) {
        // hiredis reads exactly argvlen bytes, so a null data() of an empty view is never read;
        // give it a valid pointer anyway.
        argv.push_back(a.data() ? a.data() : "");
        argvlen.push_back(a.size());
    }
    char* out = nullptr;
    int n =
        redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv.data(), argvlen.data());
    if (n < 0 || out == nullptr) throw std::bad_alloc();
    std::string cmd(out, static_cast<std::size_t>(n));
    redisFreeCommand(out);
    return cmd;
}

std::string encode_command(std::initializer_list<std::string_view> args) {
    return encode_command(std::span<const std::string_view>(args.begin(), args.size()));
}

// ---------------------------------------------------------------------------------------------
// redisReader with object functions that build `reply` trees directly: the root is heap
// allocated, children are constructed in place inside their parent's `elements`. hiredis only
// ever frees root objects (redisReaderFree, errors), so freeObject deletes a root.

struct resp_reader::state {
    redisReader* reader = nullptr;
    std::size_t fed = 0;               // bytes fed since the reader was created
    std::size_t boundary = 0;          // value of `fed` at the end of the last complete reply
    std::size_t elements_in_reply = 0; // array slots declared by the reply being built
    const char* limit_error = nullptr; // set by a callback that refused an object
    std::string error;                 // sticky once set

    static redisReplyObjectFunctions functions;

    static state* self(const redisReadTask* task) { return static_cast<state*>(task->privdata); }

    // Where a new object goes: in place in its parent array, or a fresh root.
    static reply* place(const redisReadTask* task) {
        if (task->parent) {
            auto* parent = static_cast<reply*>(task->parent->obj);
            return &parent->elements[static_cast<std::size_t>(task->idx)];
        }
        return new (std::nothrow) reply();
    }

    static int depth(const redisReadTask* task) {
        int d = 0;
        for (auto* p = task->parent; p; p = p->parent) ++d;
        return d;
    }

    static void* create_string(const redisReadTask* task, char* str, std::size_t len) {
        if (len > max_reply_bytes) {
            self(task)->limit_error = "bulk string exceeds the reply size limit";
            return nullptr;
        }
        reply* r = place(task);
        if (!r) return nullptr;
        switch (task->type) {
        case REDIS_REPLY_ERROR: r->type = reply::kind::error; break;
        case REDIS_REPLY_STATUS: r->type = reply::kind::status; break;
        default: r->type = reply::kind::string; break;
        }
        try {
            r->str.assign(str, len);
        } catch (...) {
            if (!task->parent) delete r;
            return nullptr;
        }
        return r;
    }

    static void* create_array(const redisReadTask* task, int elements) {
        state* s = self(task);
        if (depth(task) >= max_reply_depth) {
            s->limit_error = "reply nesting too deep";
            return nullptr;
        }
        s->elements_in_reply += static_cast<std::size_t>(elements);
        if (s->elements_in_reply > max_reply_elements) {
            s->limit_error = "reply declares too many array elements";
            return nullptr;
        }
        reply* r = place(task);
        if (!r) return nullptr;
        r->type = reply::kind::array;
        try {
            r->elements.resize(static_cast<std::size_t>(elements));
        } catch (...) {
            if (!task->parent) delete r;
            return nullptr;
        }
        return r;
    }

    static void* create_integer(const redisReadTask* task, long long value) {
        reply* r = place(task);
        if (!r) return nullptr;
        r->type = reply::kind::integer;
        r->integer = value;
        return r;
    }

    static void* create_nil(const redisReadTask* task) {
        reply* r = place(task);
        if (!r) return nullptr;
        r->type = reply::kind::nil;
        return r;
    }

    static void free_object(void* obj) { delete static_cast<reply*>(obj); }

    state() {
        reader = redisReaderCreateWithFunctions(&functions);
        if (!reader) throw std::bad_alloc();
        reader->privdata = this; // handed to every read task as task->privdata
    }
    ~state() { redisReaderFree(reader); }

    [[noreturn]] void fail(std::string message) {
        error = std::move(message);
        throw resp_error(error);
    }

    // While hiredis waits for the body of a bulk string it has already consumed the '$' and
    // sits at the length digits; it would buffer any announced length, so check it here to fail
    // as soon as the header is known instead of after 64 MiB have arrived.
    void check_pending_bulk_length() {
        if (reader->ridx < 0 || reader->rstack[reader->ridx].type != REDIS_REPLY_STRING) return;
        const char* p = reader->buf + reader->pos;
        const char* end = reader->buf + reader->len;
        if (p < end && *p == '-') return; // nil or invalid; hiredis decides
        unsigned long long len = 0;
        for (; p < end && *p >= '0' && *p <= '9'; ++p) {
            len = len * 10 + static_cast<unsigned>(*p - '0');
            if (len > max_reply_bytes)
                fail("redis protocol error: bulk string length exceeds limit");
        }
    }
};

redisReplyObjectFunctions resp_reader::state::functions = {
    &resp_reader::state::create_string, &resp_reader::state::create_array,
    &resp_reader::state::create_integer, &resp_reader::state::create_nil,
    &resp_reader::state::free_object};

resp_reader::resp_reader() : state_(std::make_unique<state>()) {}
resp_reader::~resp_reader() = default;
resp_reader::resp_reader(resp_reader&&) noexcept = default;
resp_reader& resp_reader::operator=(resp_reader&&) noexcept = default;

void resp_reader::reset() { state_ = std::make_unique<state>(); }

void resp_reader::feed(std::string_view bytes) {
    if (bytes.empty()) return;
    if (!state_->error.empty()) return; // the stream is dead; next() reports why
    if (redisReaderFeed(state_->reader, bytes.data(), bytes.size()) != REDIS_OK)
        state_->fail("redis protocol error: out of memory");
    state_->fed += bytes.size();
}

std::optional<reply> resp_reader::next() {
    state& s = *state_;
    if (!s.error.empty()) throw resp_error(s.error);
    void* obj = nullptr;
    if (redisReaderGetReply(s.reader, &obj) != REDIS_OK) {
        std::string why = s.limit_error ? s.limit_error : s.reader->errstr;
        s.fail("redis protocol error: " + why);
    }
    if (!obj) {
        s.check_pending_bulk_length();
        // Everything fed after the last complete reply belongs to the one being built.
        if (s.fed - s.boundary > max_reply_bytes + 64)
            s.fail("redis protocol error: reply exceeds size limit");
        return std::nullopt;
    }
    std::unique_ptr<reply> root(static_cast<reply*>(obj));
    s.boundary = s.fed - (s.reader->len - s.reader->pos);
    s.elements_in_reply = 0;
    return std::optional<reply>(std::move(*root));
}

} // namespace ssegw
