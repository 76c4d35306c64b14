#include "ssegw/core/redis_url.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ssegw {
namespace {

TEST(redis_url, host_only) {
    auto ep = parse_redis_url("redis://cache.internal");
    EXPECT_EQ(ep.host, "cache.internal");
    EXPECT_EQ(ep.port, 6379);
    EXPECT_EQ(ep.username, "");
    EXPECT_EQ(ep.password, "");
    EXPECT_EQ(ep.db, 0);
}

TEST(redis_url, host_and_port) {
    auto ep = parse_redis_url("redis://127.0.0.1:6380");
    EXPECT_EQ(ep.host, "127.0.0.1");
    EXPECT_EQ(ep.port, 6380);
}

TEST(redis_url, password_port_and_db) {
    auto ep = parse_redis_url("redis://:s3cret@host:7000/2");
    EXPECT_EQ(ep.host, "host");
    EXPECT_EQ(ep.port, 7000);
    EXPECT_EQ(ep.username, "");
    EXPECT_EQ(ep.password, "s3cret");
    EXPECT_EQ(ep.db, 2);
}

TEST(redis_url, user_and_password) {
    auto ep = parse_redis_url("redis://gateway:pw@host");
    EXPECT_EQ(ep.username, "gateway");
    EXPECT_EQ(ep.password, "pw");
    EXPECT_EQ(ep.port, 6379);
}

TEST(redis_url, ipv6_literal) {
    auto ep = parse_redis_url("redis://[::1]:6380");
    EXPECT_EQ(ep.host, "::1");
    EXPECT_EQ(ep.port, 6380);
    EXPECT_EQ(parse_redis_url("redis://[fe80::1]").port, 6379);
}

TEST(redis_url, percent_encoded_and_raw_at_in_password) {
    EXPECT_EQ(parse_redis_url("redis://:p%40ss%3A@h").password, "p@ss:");
    EXPECT_EQ(parse_redis_url("redis://u:p@ss@h").password, "p@ss");
    EXPECT_EQ(parse_redis_url("redis://u:p@ss@h").host, "h");
}

TEST(redis_url, userinfo_without_colon_is_a_password_like_redis_cli) {
    auto ep = parse_redis_url("redis://secret@h");
    EXPECT_EQ(ep.username, "");
    EXPECT_EQ(ep.password, "secret");
}

TEST(redis_url, trailing_slash_means_db_zero) { EXPECT_EQ(parse_redis_url("redis://h:1/").db, 0); }

TEST(redis_url, rejects_junk_with_one_line_messages) {
    for (const char* bad : {"",
                            "redis:/h",
                            "http://h",
                            "rediss:/h",
                            "redis://",
                            "redis://:6379",
                            "redis://h:",
                            "redis://h:0",
                            "redis://h:65536",
                            "redis://h:12ab",
                            "redis://h:-1",
                            "redis://h/x",
                            "redis://h/-1",
                            "redis://h/1/2",
                            "redis://[::1",
                            "redis://[::1]x",
                            "redis://[]:1",
                            "redis://h?db=1",
                            "redis://ho st",
                            "redis://:p%zz@h",
                            "redis://:p%4@h",
                            "redis://user:@h",
                            "redis://h:1:2"}) {
        SCOPED_TRACE(bad);
        try {
            parse_redis_url(bad);
            ADD_FAILURE() << "accepted";
        } catch (const std::invalid_argument& e) {
            std::string msg = e.what();
            EXPECT_FALSE(msg.empty());
            EXPECT_EQ(msg.find('\n'), std::string::npos);
        }
    }
}

TEST(redis_url, rediss_means_tls) {
    auto ep = parse_redis_url("rediss://default:pw@cache.example.com:6380/2");
    EXPECT_TRUE(ep.tls);
    EXPECT_EQ(ep.host, "cache.example.com");
    EXPECT_EQ(ep.port, 6380);
    EXPECT_EQ(ep.password, "pw");
    EXPECT_EQ(ep.db, 2);
    EXPECT_FALSE(parse_redis_url("redis://h").tls);
    EXPECT_EQ(mask_redis_url("rediss://u:pw@h"), "rediss://u:***@h");
}

TEST(redis_url, address_of_carries_no_credentials) {
    EXPECT_EQ(address_of(parse_redis_url("redis://u:topsecret@[::1]:7000/3")), "[::1]:7000");
    EXPECT_EQ(address_of(parse_redis_url("redis://:pw@cache.internal")), "cache.internal:6379");
}

TEST(mask_redis_url, hides_only_the_password) {
    EXPECT_EQ(mask_redis_url("redis://:pw@host:6379"), "redis://:***@host:6379");
    EXPECT_EQ(mask_redis_url("redis://user:pw@host:6379/0"), "redis://user:***@host:6379/0");
    EXPECT_EQ(mask_redis_url("redis://:p@ss/w@host:6379"), "redis://:***@host:6379");
    EXPECT_EQ(mask_redis_url("redis://token@host"), "redis://***@host");
    EXPECT_EQ(mask_redis_url("redis://user:@host"), "redis://user:@host");
    EXPECT_EQ(mask_redis_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    EXPECT_EQ(mask_redis_url("none"), "none");
    EXPECT_EQ(mask_redis_url(""), "");
}

} // namespace

TEST(redis_url_list, splits_only_before_a_scheme) {
    // A comma inside a password does not split.
    const auto urls = split_redis_urls("redis://:a,b@h1:1,rediss://h2:2");
    ASSERT_EQ(urls.size(), 2u);
    EXPECT_EQ(urls[0], "redis://:a,b@h1:1");
    EXPECT_EQ(urls[1], "rediss://h2:2");
    EXPECT_EQ(split_redis_urls("redis://h").size(), 1u);
}

TEST(redis_url_list, parses_each_and_masks_each) {
    const auto eps = parse_redis_url_list("redis://:p1@h1:26379,redis://h2:26380");
    ASSERT_EQ(eps.size(), 2u);
    EXPECT_EQ(eps[0].password, "p1");
    EXPECT_EQ(eps[1].port, 26380);
    EXPECT_THROW(parse_redis_url_list("redis://h1,http://h2"), std::invalid_argument);
    EXPECT_EQ(mask_redis_url("redis://:p1@h1:1,redis://u:p2@h2:2"),
              "redis://:***@h1:1,redis://u:***@h2:2");
}

} // namespace ssegw
