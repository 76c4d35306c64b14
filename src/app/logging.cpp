#include "ssegw/app/logging.hpp"

#include <chrono>
#include <ctime>
#include <memory>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace ssegw {

namespace {

/// One JSON object per line: {"time":..,"level":..,"thread":..,"msg":..}, the message escaped
/// (a user id or a Redis error may hold quotes, backslashes or control characters).
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const auto t = std::chrono::system_clock::to_time_t(msg.time);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
                .count() %
            1000;
        std::tm tm{};
        gmtime_r(&t, &tm);
        char stamp[40];
        const auto n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        append(dest, R"({"time":")");
        append(dest, std::string_view(stamp, n));
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms));
        append(dest, frac);
        append(dest, R"(","level":")");
        const auto level = spdlog::level::to_string_view(msg.level);
        append(dest, std::string_view(level.data(), level.size()));
        append(dest, R"(","thread":)");
        append(dest, std::to_string(msg.thread_id));
        append(dest, R"(,"msg":")");
        escape(dest, std::string_view(msg.payload.data(), msg.payload.size()));
        append(dest, "\"}\n");
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }

private:
    static void append(spdlog::memory_buf_t& dest, std::string_view s) {
        dest.append(s.data(), s.data() + s.size());
    }

    static void escape(spdlog::memory_buf_t& dest, std::string_view s) {
        for (unsigned char c : s) {
            switch (c) {
            case '"': append(dest, "\\\""); break;
            case '\\': append(dest, "\\\\"); break;
            case '\n': append(dest, "\\n"); break;
            case '\r': append(dest, "\\r"); break;
            case '\t': append(dest, "\\t"); break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    append(dest, buf);
                } else {
                    dest.push_back(static_cast<char>(c));
                }
            }
        }
    }
};

} // namespace

void setup_logging(const log_config& cfg) {
    auto logger = spdlog::stderr_color_mt("sse-gateway");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(cfg.level));
    if (cfg.format == log_format::json)
        logger->set_formatter(std::make_unique<json_formatter>());
    else
        logger->set_formatter(
            std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%t] %v"));
}

} // namespace ssegw
