#pragma once
// Runs an io_context until a condition holds or a deadline passes: every wait in the Redis tests
// goes through here, so none can hang.

#include <chrono>

#include <boost/asio/io_context.hpp>

namespace ssegw::test {

template <class Pred>
bool run_until(boost::asio::io_context& io, Pred pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.run_for(std::chrono::milliseconds(10));
        if (io.stopped()) io.restart();
    }
    return true;
}

} // namespace ssegw::test
