#include "ssegw/app/health_check.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ssegw {
namespace {

using clock = std::chrono::steady_clock;

/// Closes the descriptor whatever path the probe leaves by.
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

health_check_result fail(std::string why) { return {1, "not ready: " + std::move(why)}; }

/// Waits until `fd` is ready for `events` or the deadline passes; false on timeout or error.
bool wait_for(int fd, short events, clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

} // namespace

health_check_result check_health(const server_config& server, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    // The admin listener binds an IP literal (server.cpp: make_address); a wildcard is reached
    // on loopback, which is what a container's own health check can always reach.
    std::string host = server.admin_host;
    if (host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";

    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    if (auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
        ::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(server.admin_port);
        addr_len = sizeof(sockaddr_in);
    } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
               ::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(server.admin_port);
        addr_len = sizeof(sockaddr_in6);
    } else {
        return fail("server.admin_host is not an IP address: " + server.admin_host);
    }
    const std::string where = host + ":" + std::to_string(server.admin_port);

    fd_guard sock{::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (sock.fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
    if (::connect(sock.fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0) {
        if (errno != EINPROGRESS) return fail(where + ": " + std::strerror(errno));
        if (!wait_for(sock.fd, POLLOUT, deadline)) return fail(where + ": connect timed out");
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return fail(where + ": " + std::strerror(err));
    }

    const std::string request =
        "GET /readyz HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\n\r\n";
    std::size_t sent = 0;
    while (sent < request.size()) {
        const auto n =
            ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_for(sock.fd, POLLOUT, deadline)) return fail(where + ": send timed out");
        } else {
            return fail(where + ": send: " + std::strerror(errno));
        }
    }

    // Only the status line matters: "HTTP/1.1 200 OK".
    std::string head;
    char buf[256];
    while (head.find("\r\n") == std::string::npos && head.size() < 1024) {
        if (!wait_for(sock.fd, POLLIN, deadline)) return fail(where + ": no answer in time");
        const auto n = ::recv(sock.fd, buf, sizeof(buf), 0);
        if (n > 0) {
            head.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0) {
            break;
        } else if (errno != EAGAIN && errno != EINTR) {
            return fail(where + ": recv: " + std::strerror(errno));
        }
    }
    const std::string status = head.substr(0, head.find("\r\n"));
    if (status.rfind("HTTP/1.", 0) == 0 && status.compare(8, 4, " 200") == 0 &&
        (status.size() == 12 || status[12] == ' '))
        return {0, "ready: " + where + " /readyz: " + status};
    if (status.empty()) return fail(where + ": the connection closed without an answer");
    return fail(where + " /readyz: " + status);
}

} // namespace ssegw
