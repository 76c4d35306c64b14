#include "ssegw/broker/local_broker.hpp"

#include "ssegw/broker/router.hpp"

namespace ssegw {

void local_broker::publish(std::string channel, std::string payload, publish_done done) {
    router_.route(channel, payload);
    if (done) done(true, "");
}

} // namespace ssegw
