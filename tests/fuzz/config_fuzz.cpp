// Fuzzes configuration loading: apply_json + validate on arbitrary JSON. Start-up code, but it
// reads files, env and flags written by people: the contract is that only config_error (one
// clear line, exit code 2) ever escapes, never another exception or a crash. A configuration
// that validates must also survive its own --print-config output.

#include "fuzz_check.hpp"

#include "ssegw/config/config_loader.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;

    ssegw::gateway_config cfg;
    try {
        ssegw::apply_json(cfg, j);
        ssegw::validate(cfg);
    } catch (const ssegw::config_error&) {
        return 0;
    }

    const std::string printed = ssegw::effective_config_json(cfg);
    const auto reparsed = nlohmann::json::parse(printed, nullptr, false);
    SSEGW_FUZZ_CHECK(!reparsed.is_discarded());
    ssegw::gateway_config again;
    try {
        ssegw::apply_json(again, reparsed);
        ssegw::validate(again);
    } catch (const ssegw::config_error& e) {
        std::fprintf(stderr, "effective config refused: %s\n", e.what());
        SSEGW_FUZZ_CHECK(!"effective_config_json output is not a valid config");
    }
    SSEGW_FUZZ_CHECK(ssegw::effective_config_json(again) == printed);
    return 0;
}
