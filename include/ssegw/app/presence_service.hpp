#pragma once
// Presence on the control loop: merges the shards' reports into this instance's count of open
// streams per user, and keeps Redis in step through the presence library
// (redis/presence_functions.hpp): one call per flush with the absolute counts of the users that
// changed, and one per heartbeat (presence.heartbeat_ms) that keeps the instance alive there,
// sweeps dead instances and writes the offlines that fell due. Answers GET /presence.
// Standalone (no Redis): this instance's own counts.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ssegw/broker/broker.hpp"
#include "ssegw/config/config.hpp"
#include "ssegw/core/log_throttle.hpp"
#include "ssegw/core/string_map.hpp"
#include "ssegw/redis/presence_functions.hpp"
#include "ssegw/shard/presence_sink.hpp"

namespace ssegw {

class presence_service final : public presence_sink {
public:
    /// (status, JSON body), as the admin port's routes answer.
    using reply_fn = std::function<void(unsigned status, std::string body)>;

    /// `instance`: this process's id in Redis and in lifecycle entries (unique per process).
    presence_service(boost::asio::io_context& control, const gateway_config& cfg, broker& events,
                     std::string instance);
    ~presence_service();
    presence_service(const presence_service&) = delete;
    presence_service& operator=(const presence_service&) = delete;

    /// Starts the heartbeat (with Redis): the instance registers at once.
    void start();
    void stop();
    /// Shutdown: tells Redis this instance holds nothing any more (its users settle there now,
    /// offline after the grace unless back elsewhere), then runs `done` (at once without Redis).
    void leave(std::function<void()> done);

    void on_presence(unsigned shard_id, presence_report report) override;

    /// GET /presence?<query>: {"users": {"<id>": {"connections": N, "instances": K}}}; 400 for
    /// a bad query, 409 when presence is disabled, 503 when Redis cannot answer.
    void query(std::string_view query, reply_fn respond);

    std::string metrics() const;
    const std::string& instance() const noexcept { return instance_; }

    /// A process-unique instance id: `<host>-<pid>-<random>` (host cut to 40 bytes).
    static std::string make_instance_id();

private:
    /// Sends what is owed to Redis (a full report, the users that changed, a heartbeat, the
    /// lifecycle records), unless a round is in flight; the round's end calls it again.
    void flush();
    using count_chunk = std::vector<std::pair<std::string, std::uint32_t>>;
    /// One FCALL ssegw_presence_apply; `then`: chunks sent once this one succeeded.
    void send_apply(count_chunk counts, bool reset, bool full, std::vector<count_chunk> then = {});
    void send_lifecycle();
    /// Entries of a lifecycle call that did not reach Redis, back at the head of the queue.
    void requeue_lifecycle(std::vector<lifecycle_entry> entries);
    static bool is_transport_error(const std::string& error);
    void round_done();
    /// Runs a presence function on the node of `key`, installing the library there first when
    /// that node lacks it (a restarted Redis, a Cluster node never written to).
    void call(const std::string& key, std::vector<std::string> args, broker::command_done done,
              bool may_load = true);
    void failed(std::string_view what, const std::string& error);
    void schedule_heartbeat();

    boost::asio::io_context& control_;
    const presence_config& cfg_;
    std::string prefix_;
    broker& events_;
    std::string instance_;
    bool redis_;
    boost::asio::steady_timer heartbeat_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

    /// user -> open streams here. One entry per distinct user, so per-stream memory when each
    /// stream is a different user: a flat table (~50 B per user) rather than nodes (~75).
    string_map<std::uint32_t> local_;
    std::unordered_set<std::string> dirty_; ///< changed since the last send (released after)
    std::deque<stream_lifecycle> lifecycle_;
    bool need_full_ = true; ///< Redis may not hold this instance's counts: send them all
    bool heartbeat_due_ = true;
    bool stopped_ = false;
    unsigned in_flight_ = 0; ///< calls of the current round
    bool round_failed_ = false;
    bool round_full_ = false;
    bool round_unknown_ = false;    ///< a delta call found the instance's records gone
    bool lifecycle_failed_ = false; ///< lifecycle entries wait for the next heartbeat

    log_throttle error_log_{std::chrono::seconds(10)};
    std::uint64_t reports_ = 0;
    std::uint64_t batches_ = 0;
    std::uint64_t writes_ = 0;
    std::uint64_t resyncs_ = 0;
    std::uint64_t onlines_ = 0;
    std::uint64_t offlines_ = 0;
    std::uint64_t swept_ = 0;
    std::uint64_t queries_ = 0;
    std::uint64_t apply_errors_ = 0;
    std::uint64_t query_errors_ = 0;
    std::uint64_t lifecycle_written_ = 0;
    std::uint64_t lifecycle_errors_ = 0;
    std::uint64_t lifecycle_dropped_ = 0;
    std::uint64_t underflows_ = 0;
};

} // namespace ssegw
