#include "ssegw/auth/principal.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

principal with_grants(std::vector<std::string> grants) {
    return {"u1", std::move(grants), std::nullopt};
}

TEST(principal, exact_grant_matches_only_that_topic) {
    auto p = with_grants({"news", "prices.eur"});
    EXPECT_TRUE(p.may_join("news"));
    EXPECT_TRUE(p.may_join("prices.eur"));
    EXPECT_FALSE(p.may_join("new"));
    EXPECT_FALSE(p.may_join("newsX"));
    EXPECT_FALSE(p.may_join("prices.usd"));
    EXPECT_FALSE(p.may_join("prices"));
}

TEST(principal, star_allows_everything) {
    auto p = with_grants({"*"});
    EXPECT_TRUE(p.may_join("anything"));
    EXPECT_TRUE(p.may_join("prices.eur"));
}

TEST(principal, trailing_wildcard_is_a_prefix_match) {
    auto p = with_grants({"prices.*"});
    EXPECT_TRUE(p.may_join("prices.eur"));
    EXPECT_TRUE(p.may_join("prices.eur.spot"));
    EXPECT_FALSE(p.may_join("pricesX"));
    EXPECT_FALSE(p.may_join("prices"));
    EXPECT_FALSE(p.may_join("xprices.eur"));
}

TEST(principal, wildcard_without_dot_keeps_its_prefix) {
    auto p = with_grants({"prices*"});
    EXPECT_TRUE(p.may_join("pricesX"));
    EXPECT_TRUE(p.may_join("prices.eur"));
    EXPECT_FALSE(p.may_join("price"));
}

TEST(principal, star_in_the_middle_is_literal) {
    auto p = with_grants({"a*b"});
    EXPECT_TRUE(p.may_join("a*b"));
    EXPECT_FALSE(p.may_join("axb"));
}

TEST(principal, no_grants_and_empty_grant_allow_nothing) {
    EXPECT_FALSE(with_grants({}).may_join("news"));
    EXPECT_FALSE(with_grants({""}).may_join("news"));
}

} // namespace
} // namespace ssegw
