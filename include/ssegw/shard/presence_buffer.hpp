#pragma once
// A shard's presence changes, gathered between reports: the net change per user and, with the
// lifecycle stream on, one record per stream opened or closed. One timer per shard (armed by
// the first change after a report), none per connection.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ssegw/core/channel_list.hpp"
#include "ssegw/shard/close_reason.hpp"
#include "ssegw/shard/presence_sink.hpp"

namespace ssegw {

class presence_buffer {
public:
    using report_fn = std::function<void(presence_report)>;

    /// Reports through `report` at most every `interval` while there are changes; records
    /// lifecycle entries only when `lifecycle`.
    presence_buffer(boost::asio::io_context& ioc, std::chrono::milliseconds interval,
                    bool lifecycle, report_fn report);

    void opened(std::string_view user, const channel_list& channels);
    void closed(std::string_view user, const channel_list& channels, close_reason why,
                std::uint32_t duration_seconds);
    /// Reports now what is gathered (the timer's work; also for tests). What a shard gathers
    /// is bounded by the streams it opens and closes in one interval; the presence service
    /// caps what waits for Redis.
    void flush();

private:
    void changed(std::string_view user, std::int32_t delta);
    void arm();

    boost::asio::steady_timer timer_;
    std::chrono::milliseconds interval_;
    bool lifecycle_;
    report_fn report_;
    std::unordered_map<std::string, std::int32_t> deltas_;
    std::vector<stream_lifecycle> records_;
    bool armed_ = false;
};

} // namespace ssegw
