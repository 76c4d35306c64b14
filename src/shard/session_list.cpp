#include "ssegw/shard/session_list.hpp"

#include <algorithm>
#include <utility>

namespace ssegw {

session_list::session_list(session_list&& other) noexcept
    : word_(std::exchange(other.word_, nullptr)) {}

session_list& session_list::operator=(session_list&& other) noexcept {
    if (this != &other) {
        delete many();
        word_ = std::exchange(other.word_, nullptr);
    }
    return *this;
}

session_list::~session_list() { delete many(); }

void session_list::push_back(session* s) {
    if (auto* v = many()) {
        v->push_back(s);
        return;
    }
    if (word_ == nullptr) {
        word_ = s;
        return;
    }
    auto* v = new vector{word_, s};
    word_ = reinterpret_cast<session*>(reinterpret_cast<std::uintptr_t>(v) | 1);
}

bool session_list::erase(session* s) noexcept {
    auto* v = many();
    if (v == nullptr) {
        if (word_ != s || s == nullptr) return false;
        word_ = nullptr;
        return true;
    }
    const auto pos = std::find(v->begin(), v->end(), s);
    if (pos == v->end()) return false;
    *pos = v->back();
    v->pop_back();
    if (v->size() == 1) {
        // Back to one stream (a user's other tab closed): the word holds it again, the
        // vector goes.
        word_ = v->front();
        delete v;
    }
    return true;
}

} // namespace ssegw
