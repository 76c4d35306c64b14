#include "ssegw/broker/resume_service.hpp"

#include <spdlog/spdlog.h>

#include "ssegw/broker/broker.hpp"
#include "ssegw/broker/event_sink.hpp"

namespace ssegw {

namespace {

/// Channels per history read: keeps each Redis call's work and reply bounded.
constexpr std::size_t channels_per_read = 256;

} // namespace

struct resume_service::pending_request {
    std::vector<std::string> channels;
    std::optional<stream_position> from;
    deliver_fn deliver;
    std::function<bool()> alive;
    unsigned attempts = 0;
};

resume_service::resume_service(boost::asio::io_context& control, broker& b, event_sink& sink)
    : broker_(b), sink_(sink), control_(control), retry_timer_(control) {
    broker_.on_link([this](bool up) { on_link(up); });
}

void resume_service::request(std::vector<std::string> channels, std::optional<stream_position> from,
                             deliver_fn deliver, std::function<bool()> alive) {
    auto req = std::make_shared<pending_request>();
    req->channels = std::move(channels);
    req->from = std::move(from);
    req->deliver = std::move(deliver);
    req->alive = std::move(alive);
    attempt(std::move(req));
}

void resume_service::attempt(std::shared_ptr<pending_request> req) {
    // Subscribed (and confirmed) first: anything published after the read below then reaches
    // the session live, and anything before is in what the read returns.
    broker_.when_subscribed(req->channels, [this, req] {
        if (stopped_ || (req->alive && !req->alive())) return;
        read_chunked(req->channels, req->from, [this, req](history_read r) {
            if (stopped_ || (req->alive && !req->alive())) return;
            if (!r.ok && ++req->attempts < max_attempts) {
                // Most likely Redis went away mid-read: the stream keeps its heartbeats and
                // waits; try again shortly, after the subscription is confirmed again.
                ++retries_;
                auto timer = std::make_shared<boost::asio::steady_timer>(
                    control_, std::chrono::milliseconds(200 * req->attempts));
                timer->async_wait([this, req, timer](const boost::system::error_code& ec) {
                    if (!ec) attempt(req);
                });
                return;
            }
            req->deliver(std::make_shared<const history_read>(std::move(r)));
        });
    });
}

void resume_service::read_chunked(std::vector<std::string> channels,
                                  std::optional<stream_position> from,
                                  std::function<void(history_read)> done) {
    if (channels.size() <= channels_per_read)
        return broker_.read_history(std::move(channels), std::move(from), std::move(done));
    // Chunks are read one after the other and merged (see merge_history_reads).
    struct state {
        std::vector<std::vector<std::string>> chunks;
        std::vector<history_read> parts;
        std::optional<stream_position> from;
        std::function<void(history_read)> done;
    };
    auto st = std::make_shared<state>();
    for (std::size_t i = 0; i < channels.size(); i += channels_per_read)
        st->chunks.emplace_back(channels.begin() + static_cast<std::ptrdiff_t>(i),
                                channels.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                       channels.size(), i + channels_per_read)));
    st->from = std::move(from);
    st->done = std::move(done);
    auto next = std::make_shared<std::function<void()>>();
    *next = [this, st, next] {
        const auto i = st->parts.size();
        if (i == st->chunks.size()) {
            st->done(merge_history_reads(std::move(st->parts)));
            *next = nullptr; // break the self-reference
            return;
        }
        broker_.read_history(st->chunks[i], st->from, [st, next](history_read r) {
            const bool ok = r.ok;
            st->parts.push_back(std::move(r));
            if (!ok) {
                st->done(std::move(st->parts.back()));
                *next = nullptr;
                return;
            }
            (*next)();
        });
    };
    (*next)();
}

void resume_service::on_link(bool up) {
    link_up_ = up;
    if (!up) {
        // From the moment the feed is back, history events wait until we have caught up. A read
        // still running covers only the outage before this one: run another after it.
        sink_.begin_catch_up();
        if (catch_up_running_) rerun_ = true;
        return;
    }
    catch_up();
}

void resume_service::catch_up() {
    if (stopped_ || !link_up_ || catch_up_running_) return;
    catch_up_running_ = true;
    const auto from = sink_.position();
    auto channels = from ? sink_.wanted_channels() : std::vector<std::string>{};
    read_chunked(std::move(channels), from, [this, from](history_read r) {
        if (!stopped_ && r.ok && r.unknown_position && from && r.tip.epoch != from->epoch) {
            // Redis has no record of the epoch routing got to: it lost its data (restarted
            // empty, or a replica was promoted without any of it) or it is another server.
            // Nothing it holds was routed here, so all of it is read; taking its tip as
            // "routed" would skip what was published on it before this read, including the
            // live events held meanwhile. (Same epoch but ahead of the tip is the other
            // unknown case: an older snapshot, all of it routed already.)
            return read_chunked(sink_.wanted_channels(),
                                stream_position{r.tip.epoch, 0, r.tip.time},
                                [this](history_read all) { finish_catch_up(std::move(all)); });
        }
        finish_catch_up(std::move(r));
    });
}

void resume_service::finish_catch_up(history_read r) {
    catch_up_running_ = false;
    if (stopped_) return;
    if (!r.ok) {
        spdlog::warn("history catch-up failed: {}; retrying", r.error);
        return retry_catch_up_later();
    }
    if (!sink_.position()) {
        sink_.adopt_position(r.tip); // start-up: nothing is owed to anyone yet
        if (!sink_.catching_up()) return;
    }
    const bool complete = sink_.finish_catch_up(r);
    sink_.flush();
    if (rerun_ || !complete) {
        rerun_ = false;
        sink_.begin_catch_up();
        catch_up(); // runs now if the feed is up, else at the next link-up
    }
}

void resume_service::retry_catch_up_later() {
    retry_timer_.expires_after(std::chrono::milliseconds(500));
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) catch_up();
    });
}

void resume_service::stop() {
    stopped_ = true;
    retry_timer_.cancel();
}

} // namespace ssegw
