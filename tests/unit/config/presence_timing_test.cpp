// The contract's presence bounds, from the default settings: a change shows in GET /presence
// within 2 s, the streams of an instance killed without cleaning up stop counting within 30 s.
// Tests with short settings (tests/integration/test_presence.py) check the same formulas live.

#include "ssegw/config/config.hpp"
#include "ssegw/config/config_loader.hpp"
#include "ssegw/core/presence_timing.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

presence_timing timing_of(const presence_config& p) {
    return {p.flush_ms, p.heartbeat_ms, p.instance_ttl_seconds, p.offline_grace_seconds};
}

TEST(presence_timing, defaults_keep_the_contracts_bounds) {
    const auto t = timing_of(gateway_config{}.presence);
    // With Redis answering within 500 ms (it answers in well under 1 ms on a LAN).
    EXPECT_LE(t.change_visible_ms(500), 2000u);
    EXPECT_LE(t.dead_instance_counted_ms(), 30000u);
    EXPECT_LE(t.dead_instance_offline_ms(), 30000u);
    // The offline grace is the contract's default.
    EXPECT_EQ(gateway_config{}.presence.offline_grace_seconds, 5u);
    EXPECT_LE(t.offline_written_ms(500), 8000u);
    EXPECT_GE(t.offline_written_ms(0), 5000u);
}

TEST(presence_timing, formulas) {
    const presence_timing t{250, 1000, 20, 5};
    EXPECT_EQ(t.change_visible_ms(10), 270u);
    EXPECT_EQ(t.dead_instance_counted_ms(), 20000u);
    EXPECT_EQ(t.dead_instance_offline_ms(), 27000u);
    EXPECT_EQ(t.offline_written_ms(10), 270u + 5000u + 1000u + 10u);
}

TEST(presence_config, validated) {
    auto refuses = [](auto change, std::string_view key) {
        gateway_config cfg;
        cfg.auth.mode = auth_mode::none;
        change(cfg.presence);
        try {
            validate(cfg);
        } catch (const config_error& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
            return;
        }
        ADD_FAILURE() << key << " accepted";
    };
    refuses([](presence_config& p) { p.offline_grace_seconds = 0; },
            "presence.offline_grace_seconds");
    refuses([](presence_config& p) { p.heartbeat_ms = 50; }, "presence.heartbeat_ms");
    refuses([](presence_config& p) { p.flush_ms = 0; }, "presence.flush_ms");
    refuses([](presence_config& p) { p.instance_ttl_seconds = 1; },
            "presence.instance_ttl_seconds");
    refuses(
        [](presence_config& p) {
            p.instance_ttl_seconds = 5;
            p.heartbeat_ms = 2000;
        },
        "presence.instance_ttl_seconds");
    refuses([](presence_config& p) { p.stream_max_len = 0; }, "presence.stream_max_len");
    refuses([](presence_config& p) { p.lifecycle_max_len = 0; }, "presence.lifecycle_max_len");

    gateway_config ok;
    ok.auth.mode = auth_mode::none;
    ok.presence.instance_ttl_seconds = 3;
    ok.presence.heartbeat_ms = 1000;
    EXPECT_NO_THROW(validate(ok));
}

} // namespace
} // namespace ssegw
