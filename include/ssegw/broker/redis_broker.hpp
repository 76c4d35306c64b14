#pragma once
// Redis mode: one pub/sub subscriber per process (what the shards need, or one pattern), plus a
// command connection for publishing and history (the Redis Functions in history_functions.hpp,
// installed at start and again whenever Redis has lost them). In Sentinel mode both links go
// where a sentinel_monitor says the primary is, and accept a server only if it says it is one.

#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ssegw/broker/broker.hpp"
#include "ssegw/config/config.hpp"

namespace ssegw {

class subscriber;
class command_client;
class sentinel_monitor;
class control_replayer;
struct control_names;
struct reply;

class redis_broker final : public broker {
public:
    /// Throws std::invalid_argument when redis.url does not parse.
    redis_broker(boost::asio::io_context& ioc, const gateway_config& cfg);
    ~redis_broker() override;

    void start(event_sink& sink) override;
    void stop() override;
    void want(const std::string& channel, bool wanted) override;
    void publish(std::string channel, std::string payload, bool with_history,
                 publish_done done) override;
    void read_history(std::vector<std::string> channels, std::optional<stream_position> from,
                      history_done done) override;
    void when_subscribed(const std::vector<std::string>& channels,
                         std::function<void()> ready) override;
    void epoch_changed(const stream_position& routed, const std::string& new_epoch) override;
    bool ready() const override;
    broker_stats stats() const override;
    void send_control(std::string message, std::int64_t keep_until, publish_done done) override;
    bool runs_commands() const override { return true; }
    void run_command(const std::string& key, std::vector<std::string> args,
                     command_done done) override;

private:
    static control_names control_names_of(const std::string& prefix);
    /// Applies the stored revocations at every link-up (control_store.hpp).
    std::unique_ptr<control_replayer> control_;

    void on_message(std::string_view redis_channel, std::string_view payload);
    /// Where history stands (epoch, sequence): what a new stream needs. Requests made within
    /// one loop turn share one read (send_tip_read, posted by the first).
    void read_tip(std::vector<std::string> channels, history_done done);
    void send_tip_read();
    /// sse_history: what channels hold after a position.
    void call_history(std::vector<std::string> channels, std::optional<stream_position> from,
                      history_done done);
    void on_subscribed(std::string_view redis_channel);
    void on_state(bool up);
    /// Re-checks the waiters of a channel whose state changed; fires those now fully live (or
    /// all of them, release_anyway, when the channel is no longer wanted: its streams left).
    void recheck(const std::string& channel, bool release_anyway = false);
    bool is_live(const std::string& channel) const;
    void release_all_waiters();
    /// Runs a history function call, installing the library first if Redis lost it.
    void call_function(std::vector<std::string> cmd, command_done done, bool may_reload = true);
    /// Installs the history library unless Redis holds this very code already.
    void load_library(std::function<void(bool ok)> done);
    void replace_library(std::function<void(bool ok)> done);
    void keep_loading_library();

    struct waiter {
        std::vector<std::string> channels;
        std::function<void()> ready;
    };
    struct tip_waiter {
        std::vector<std::string> channels; ///< for the fallback when no epoch exists yet
        history_done done;
    };

    const gateway_config& cfg_;
    event_sink* sink_ = nullptr; ///< set by start(), before the subscriber can call back
    std::string address_;        ///< host:port of the Redis, for metrics ("" until known)
    std::uint64_t epoch_changes_ = 0;
    std::unique_ptr<subscriber> subscriber_;
    std::unique_ptr<command_client> commands_;
    /// Sentinel mode: where the primary is; both links follow it.
    std::unique_ptr<sentinel_monitor> sentinels_;
    boost::asio::steady_timer load_timer_;
    std::string library_source_;
    bool library_loaded_ = false;
    bool link_up_ = false;
    bool stopped_ = false;
    std::uint64_t next_waiter_ = 0;
    std::unordered_map<std::uint64_t, waiter> waiters_;
    std::unordered_multimap<std::string, std::uint64_t> waiting_on_;
    std::vector<tip_waiter> tip_waiters_; ///< read_tip()s of this loop turn
};

} // namespace ssegw
